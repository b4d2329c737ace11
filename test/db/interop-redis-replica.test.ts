// A real redis-server as the replica of our main (`redis-server --replicaof`).
import {expect} from 'chai'
import {spawn} from 'node:child_process'
import path from 'node:path'
import type {Redis} from 'ioredis'

import {client, ensureRedis, info, redisLog, startDb, startRedis, removeTempDirs, stop, tempDir, waitFor, type Proc} from '../helpers/db.js'

describe('db main with a real redis-server replica', function () {
  this.timeout(60_000)
  let dir: string
  let main: Proc | undefined
  let replica: Proc | undefined
  let m: Redis
  let r: Redis

  before(async () => {
    ensureRedis()
    dir = await tempDir()
    main = await startDb(['db', 'main', '--port', '0', '--data-dir', path.join(dir, 'main')])
    m = client(main.port)
  })

  after(async () => {
    m?.disconnect()
    r?.disconnect()
    await stop(replica)
    await stop(main)
    await removeTempDirs()
  })

  it('sends the keys written before it attached, then the live writes, with matching offsets', async () => {
    const big = Buffer.alloc(100 * 1024, 'x')
    for (let i = 0; i < big.length; i += 97) big[i] = (i * 7) % 256
    const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 13, 10, 0, 0x80])
    await m.set('big', big)
    await m.set(Buffer.from([0xff, 0, 0x41]), binary)
    for (let i = 0; i < 200; i++) await m.set(`k${i}`, `v${i}`)
    await m.select(3)
    await m.set('in3', 'three')
    await m.select(0)
    await m.incr('counter')

    replica = await startRedis(path.join(dir, 'replica'), ['--replicaof', '127.0.0.1', String(main!.port)])
    r = client(replica.port)
    await waitFor(async () => (await info(r, 'replication')).master_link_status === 'up', 20_000, 'replica link up')
    expect((await r.getBuffer('big'))!.equals(big)).to.equal(true)
    expect((await r.getBuffer(Buffer.from([0xff, 0, 0x41])))!.equals(binary)).to.equal(true)
    expect(await r.get('k199')).to.equal('v199')
    expect(await r.get('counter')).to.equal('1')
    expect(await r.dbsize()).to.equal(203)

    // live writes, in db 0 and db 5
    await m.set('live', 'after')
    await m.incr('counter')
    await m.append('live', '!')
    await m.del('k0')
    await m.select(5)
    await m.mset('a5', '1', 'b5', '2')
    await m.select(0)
    await waitFor(async () => (await r.get('live')) === 'after!', 10_000, 'live write on the replica')
    expect(await r.get('counter')).to.equal('2')
    expect(await r.exists('k0')).to.equal(0)
    await r.select(5)
    await waitFor(async () => (await r.get('b5')) === '2', 10_000, 'db 5 write')
    await r.select(3)
    expect(await r.get('in3')).to.equal('three')
    await r.select(0)

    // once quiet, the replica's offset is ours
    await waitFor(async () => {
      const ours = await info(m, 'replication')
      const theirs = await info(r, 'replication')
      return ours.master_repl_offset === theirs.slave_repl_offset && /state=online,offset=(\d+)/.exec(ours.slave0 ?? '')?.[1] === ours.master_repl_offset
    }, 10_000, 'offsets equal')
    const ours = await info(m, 'replication')
    expect(ours.role).to.equal('master')
    expect(ours.connected_slaves).to.equal('1')
    expect(ours.slave0).to.match(new RegExp(`ip=127.0.0.1,port=${replica.port},state=online`))
  })

  it('WAIT 1 1000 returns 1', async () => {
    await m.set('waited', 'yes')
    expect(await m.wait(1, 1000)).to.equal(1)
    expect(await r.get('waited')).to.equal('yes')
  })

  it('resynchronises partially after the replica drops its link, and keeps receiving', async () => {
    const before = await info(m, 'stats')
    await r.client('KILL', 'TYPE', 'master')
    await m.set('while-down', 'x')
    await waitFor(async () => (await info(r, 'replication')).master_link_status === 'up' && (await r.get('while-down')) === 'x', 20_000, 'replica back')
    const after = await info(m, 'stats')
    expect(Number(after.sync_partial_ok)).to.equal(Number(before.sync_partial_ok) + 1)
    expect(after.sync_full).to.equal(before.sync_full)
    expect(await redisLog(replica!)).to.match(/Successful partial resynchronization with master/)
    await m.set('after-partial', 'y')
    expect(await m.wait(1, 2000)).to.equal(1)
    expect(await r.get('after-partial')).to.equal('y')
  })

  it('serves legacy SYNC to redis-cli --replica', async () => {
    const cli = spawn('redis-cli', ['-p', String(main!.port), '--replica'], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    cli.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    cli.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()))
    try {
      await waitFor(() => /SYNC done/.test(out), 10_000, 'redis-cli SYNC done')
      expect(out).to.match(/SYNC with master, discarding \d+ bytes of bulk transfer/)
      await m.set('seen-by-cli', 'yes')
      await waitFor(() => out.includes('"SET","seen-by-cli","yes"'), 10_000, 'the write in the stream')
    } finally {
      cli.kill('SIGKILL')
    }
  })
})
