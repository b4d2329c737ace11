// --sync manual: a write is on the main and on no replica until `db sync`.
import {expect} from 'chai'
import path from 'node:path'
import type {Redis} from 'ioredis'

import {runCli} from '../helpers/cli.js'
import {client, ensureRedis, info, startDb, startRedis, removeTempDirs, stop, tempDir, waitFor, type Proc} from '../helpers/db.js'

describe('db main --sync manual', function () {
  this.timeout(60_000)
  let dir: string
  const procs: Proc[] = []
  const clients: Redis[] = []
  let m: Redis

  before(async () => {
    ensureRedis()
    dir = await tempDir()
    const main = await startDb(['db', 'main', '--port', '0', '--sync', 'manual', '--data-dir', path.join(dir, 'main')])
    procs.push(main)
    m = client(main.port)
    clients.push(m)
  })

  after(async () => {
    for (const c of clients) c.disconnect()
    for (const p of procs) await stop(p)
    await removeTempDirs()
  })

  /** Waits until each replica has acknowledged everything in the main's stream. */
  async function caughtUp(count: number): Promise<void> {
    await waitFor(async () => {
      const ours = await info(m, 'replication')
      const offsets = Object.keys(ours).filter((k) => /^slave\d+$/.test(k)).map((k) => /state=online,offset=(\d+)/.exec(ours[k])?.[1])
      return offsets.length === count && offsets.every((o) => o === ours.master_repl_offset)
    }, 15_000, `${count} replicas caught up`)
  }

  it('holds writes back from every replica until db sync, then all see them', async () => {
    await m.set('before', 'synced')
    await m.incr('counter')
    const port = (await info(m, 'server')).tcp_port
    const ours = await startDb(['db', 'replica', '--port', '0', '--main', `127.0.0.1:${port}`, '--data-dir', path.join(dir, 'ours')])
    const real = await startRedis(path.join(dir, 'real'), ['--replicaof', '127.0.0.1', port])
    procs.push(ours, real)
    const replicas = [client(ours.port), client(real.port)]
    clients.push(...replicas)
    await caughtUp(2)
    // attaching is a sync for that replica: both have the data as it was
    for (const r of replicas) expect(await r.mget('before', 'counter')).to.deep.equal(['synced', '1'])

    await m.set('held', 'back')
    await m.incr('counter')
    await m.append('before', '!')
    expect(await m.get('held')).to.equal('back')
    const pending = Number((await info(m, 'replication')).pending_sync_bytes)
    expect(pending).to.be.greaterThan(0)
    expect(await m.wait(2, 2000)).to.equal(2)
    await caughtUp(2) // they have all the stream holds ...
    for (const r of replicas) expect(await r.mget('held', 'counter', 'before')).to.deep.equal([null, '1', 'synced']) // ... and not the held writes

    // a replica attaching now gets the main's current data, and the later sync does not apply the writes twice
    const late = await startDb(['db', 'replica', '--port', '0', '--main', `127.0.0.1:${port}`, '--data-dir', path.join(dir, 'late')])
    procs.push(late)
    const l = client(late.port)
    clients.push(l)
    await caughtUp(3)
    expect(await l.mget('held', 'counter', 'before')).to.deep.equal(['back', '2', 'synced!'])

    const result = await runCli(['db', 'sync', '--main', `127.0.0.1:${port}`, '--json'])
    expect(result.code, result.stderr).to.equal(0)
    expect(JSON.parse(result.stdout)).to.deep.equal({syncedBytes: pending})
    expect((await info(m, 'replication')).pending_sync_bytes).to.equal('0')
    await caughtUp(3)
    for (const r of [...replicas, l]) expect(await r.mget('held', 'counter', 'before')).to.deep.equal(['back', '2', 'synced!'])
  })
})
