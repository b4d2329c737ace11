// Our replica (`disk-client db replica`) of a real redis-server master.
import {expect} from 'chai'
import path from 'node:path'
import type {Redis} from 'ioredis'

import {client, ensureRedis, info, startDb, startRedis, removeTempDirs, stop, tempDir, waitFor, type Proc} from '../helpers/db.js'

describe('db replica of a real redis-server', function () {
  this.timeout(60_000)
  let dir: string
  let master: Proc | undefined
  let replica: Proc | undefined
  let m: Redis
  let r: Redis
  const long = 'abcdefgh'.repeat(2000) // compressible: redis stores it LZF-compressed in the RDB
  const mixed = Buffer.from(Array.from({length: 5000}, (_, i) => (i * 31) % 7 === 0 ? 0 : (i % 13) + 0x41))

  before(async () => {
    ensureRedis()
    dir = await tempDir()
    // Redis 7's defaults are diskless (repl-diskless-sync yes); the 5 s delay is cut to keep the test short.
    master = await startRedis(path.join(dir, 'master'), ['--repl-diskless-sync-delay', '0'])
    m = client(master.port)
  })

  after(async () => {
    m?.disconnect()
    r?.disconnect()
    await stop(replica)
    await stop(master)
    await removeTempDirs()
  })

  it('loads the existing keys (LZF strings, integers, other types skipped) and follows live writes', async () => {
    expect(await m.config('GET', 'repl-diskless-sync')).to.deep.equal(['repl-diskless-sync', 'yes'])
    await m.set('long', long)
    await m.set('mixed', mixed)
    await m.set('int', '12345')
    await m.set('neg', '-7')
    for (let i = 0; i < 100; i++) await m.set(`key:${i}`, `value number ${i} with enough text to compress ${'z'.repeat(i)}`)
    await m.rpush('a-list', 'x', 'y')
    await m.hset('a-hash', 'f', 'v')
    await m.select(2)
    await m.set('in2', 'two')
    await m.select(0)

    replica = await startDb(['db', 'replica', '--port', '0', '--main', `127.0.0.1:${master!.port}`, '--data-dir', path.join(dir, 'replica')])
    r = client(replica.port)
    await waitFor(async () => (await info(r, 'replication')).master_link_status === 'up', 20_000, 'our replica linked')
    expect(replica.log()).to.match(/full resync from the main: diskless/)
    expect(await r.get('long')).to.equal(long)
    expect((await r.getBuffer('mixed'))!.equals(mixed)).to.equal(true)
    expect(await r.get('int')).to.equal('12345')
    expect(await r.get('neg')).to.equal('-7')
    expect(await r.get('key:99')).to.equal(`value number 99 with enough text to compress ${'z'.repeat(99)}`)
    expect(await r.exists('a-list', 'a-hash')).to.equal(0)
    expect((await info(r, 'replication')).rdb_skipped_keys).to.equal('2')
    await r.select(2)
    expect(await r.get('in2')).to.equal('two')
    await r.select(0)

    const theirs = await info(m, 'replication')
    expect(theirs.connected_slaves).to.equal('1')
    await waitFor(async () => /state=online/.test((await info(m, 'replication')).slave0 ?? ''), 10_000, 'online on the master')
    expect((await info(m, 'replication')).slave0).to.match(new RegExp(`port=${replica.port},state=online`))

    await m.set('live', 'one')
    await m.incr('int')
    await m.append('live', '+two')
    await m.del('key:0')
    await m.select(4)
    await m.set('in4', 'four')
    await m.select(0)
    expect(await m.wait(1, 1000)).to.equal(1)
    expect(await r.get('live')).to.equal('one+two')
    expect(await r.get('int')).to.equal('12346')
    expect(await r.exists('key:0')).to.equal(0)
    await r.select(4)
    expect(await r.get('in4')).to.equal('four')
    await r.select(0)
    await waitFor(async () => (await info(r, 'replication')).slave_repl_offset === (await info(m, 'replication')).master_repl_offset, 10_000, 'offsets equal')
  })

  it('resynchronises partially when the master drops its link', async () => {
    const before = await info(m, 'stats')
    expect(await m.client('KILL', 'TYPE', 'replica')).to.equal(1)
    await m.set('during-break', 'seen')
    await waitFor(async () => (await r.get('during-break')) === 'seen', 15_000, 'the write after the break')
    const after = await info(m, 'stats')
    expect(Number(after.sync_partial_ok)).to.equal(Number(before.sync_partial_ok) + 1)
    expect(after.sync_full).to.equal(before.sync_full)
    expect((await info(r, 'replication')).partial_syncs).to.equal('1')
    await waitFor(async () => (await info(r, 'replication')).slave_repl_offset === (await info(m, 'replication')).master_repl_offset, 10_000, 'offsets equal')
  })

  it('refuses writes with READONLY', async () => {
    let failure: Error | null = null
    try {
      await r.set('nope', '1')
    } catch (error) {
      failure = error as Error
    }
    expect(failure?.message).to.equal("READONLY You can't write against a read only replica.")
    expect(await r.exists('nope')).to.equal(0)
  })

  it('catches up after the master restarts', async () => {
    await m.save()
    const syncs = async (): Promise<number> => {
      const ours = await info(r, 'replication')
      return Number(ours.full_syncs) + Number(ours.partial_syncs)
    }
    const before = await syncs()
    const port = master!.port
    m.disconnect()
    await stop(master, 'SIGTERM')
    await m.quit().catch(() => undefined)
    await waitFor(async () => (await info(r, 'replication')).master_link_status === 'down', 10_000, 'link down')
    master = await startRedis(path.join(dir, 'master'), ['--repl-diskless-sync-delay', '0'], port)
    m = client(port)
    expect(await m.get('live')).to.equal('one+two') // the master reloaded its RDB
    await m.set('after-restart', 'yes')
    await waitFor(async () => (await r.get('after-restart')) === 'yes', 20_000, 'write after the restart')
    expect(await r.get('live')).to.equal('one+two')
    expect(await syncs()).to.equal(before + 1)
    expect(await m.wait(1, 1000)).to.equal(1)
  })
})
