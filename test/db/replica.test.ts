// Our replica of our main: full sync, SELECT in the stream, partial resync
// after a broken link, WAIT, INFO replication on both sides.
import {expect} from 'chai'
import path from 'node:path'
import type {Redis} from 'ioredis'

import {client, info, startDb, removeTempDirs, stop, tempDir, waitFor, type Proc} from '../helpers/db.js'

describe('db replica of db main', function () {
  this.timeout(60_000)
  const procs: Proc[] = []
  let m: Redis
  let r: Redis
  let replica: Proc
  let main: Proc

  before(async () => {
    const dir = await tempDir()
    main = await startDb(['db', 'main', '--port', '0', '--data-dir', path.join(dir, 'main'), '--backlog', '65536'])
    procs.push(main)
    m = client(main.port)
    await m.set('before', 'attach')
    replica = await startDb(['db', 'replica', '--port', '0', '--main', `127.0.0.1:${main.port}`, '--data-dir', path.join(dir, 'replica')])
    procs.push(replica)
    r = client(replica.port)
    await waitFor(async () => (await info(r, 'replication')).master_link_status === 'up', 10_000, 'link up')
  })

  after(async () => {
    m.disconnect()
    r.disconnect()
    for (const proc of procs) await stop(proc)
    await removeTempDirs()
  })

  it('follows the main, SELECT included, and reports matching offsets', async () => {
    expect(await r.get('before')).to.equal('attach')
    await m.select(9)
    await m.mset('x', '1', 'y', '2')
    await m.select(0)
    await m.set('z', '3')
    expect(await m.wait(1, 2000)).to.equal(1)
    await r.select(9)
    expect(await r.mget('x', 'y')).to.deep.equal(['1', '2'])
    await r.select(0)
    expect(await r.get('z')).to.equal('3')
    expect(await r.get('x')).to.equal(null)
    await waitFor(async () => (await info(r, 'replication')).slave_repl_offset === (await info(m, 'replication')).master_repl_offset, 5000, 'offsets equal')
    const ours = await info(r, 'replication')
    expect(ours).to.include({role: 'slave', master_host: '127.0.0.1', master_port: String(main.port), master_link_status: 'up'})
    expect(ours.master_replid).to.equal((await info(m, 'replication')).master_replid)
  })

  it('asks PSYNC <replid> <offset+1> after a broken link and continues from the backlog', async () => {
    expect(await m.client('KILL', 'TYPE', 'replica')).to.equal(1)
    for (let i = 0; i < 50; i++) await m.incr('n')
    await waitFor(async () => (await r.get('n')) === '50', 10_000, 'the increments')
    expect((await info(m, 'stats')).sync_partial_ok).to.equal('1')
    expect((await info(m, 'stats')).sync_full).to.equal('1')
    expect(replica.log()).to.match(/partial resync with the main from offset \d+/)
  })

  it('takes a full resync when its offset has left the backlog', async () => {
    expect(await m.client('KILL', 'TYPE', 'replica')).to.equal(1)
    await m.set('big', Buffer.alloc(100_000, 'b')) // larger than the 64 KiB backlog
    await waitFor(async () => (await r.getBuffer('big'))?.length === 100_000, 10_000, 'the big value')
    expect((await info(m, 'stats')).sync_full).to.equal('2')
    expect(await r.get('n')).to.equal('50')
  })
})
