// --max-lag-bytes: a replica further behind the main than the limit reads
// nothing (the main serves), and reads again once it has caught up. The main
// and the proxy are real processes; the replica is a peer driven by this
// test over real sockets, so its lag is exact: it holds a full resync link to
// the main and acknowledges only the offsets the test tells it to, and it
// answers every GET with "replica" (the main has "main" under the key), so
// each answer says who served it.
import {expect} from 'chai'
import net from 'node:net'
import path from 'node:path'
import type {Redis} from 'ioredis'

import {serveConnection} from '../../src/kv/connection.js'
import {PONG, bulk, encodeCommand, error} from '../../src/kv/resp.js'
import {client, info, removeTempDirs, startDb, stop, tempDir, waitFor, type Proc} from '../helpers/db.js'

const LIMIT = 1000

describe('db proxy --max-lag-bytes', function () {
  this.timeout(30_000)
  let main: Proc
  let proxy: Proc
  let m: Redis
  let p: Redis
  let replicaServer: net.Server
  let link: net.Socket

  /** The proxy's view of replica0: state and lag in bytes, and the main's read count. */
  const reads = async (): Promise<{state: string; lag: number; mainReads: number}> => {
    const text = await p.info('reads')
    const replica = /replica0:[^\r\n]*state=(\w+),lag_bytes=(-?\d+)/.exec(text)
    return {state: replica?.[1] ?? '?', lag: Number(replica?.[2] ?? NaN), mainReads: Number(/main:reads=(\d+)/.exec(text)?.[1] ?? NaN)}
  }

  const mainOffset = async (): Promise<number> => Number((await info(m, 'replication')).master_repl_offset)
  const ack = (offset: number): void => {
    for (const part of encodeCommand(['REPLCONF', 'ACK', String(offset)])) link.write(part)
  }

  before(async () => {
    const dir = await tempDir()
    main = await startDb(['db', 'main', '--port', '0', '--data-dir', path.join(dir, 'main')])
    m = client(main.port)
    await m.set('k', 'main')

    replicaServer = net.createServer((socket) =>
      serveConnection(socket, (args) => {
        const name = args[0].toString('latin1').toUpperCase()
        if (name === 'PING') return PONG
        if (name === 'GET') return bulk('replica')
        return error(`ERR not served by this test replica: ${name}`)
      }),
    )
    await new Promise<void>((resolve) => replicaServer.listen(0, '127.0.0.1', resolve))
    const replicaPort = (replicaServer.address() as net.AddressInfo).port

    // The replication link: what the main streams is read and dropped; acks are the test's.
    link = net.connect({host: '127.0.0.1', port: main.port})
    link.on('data', () => undefined)
    link.on('error', () => undefined)
    for (const part of encodeCommand(['REPLCONF', 'listening-port', String(replicaPort)])) link.write(part)
    for (const part of encodeCommand(['PSYNC', '?', '-1'])) link.write(part)
    await waitFor(async () => /slave0:[^\r\n]*state=online/.test(await m.info('replication')), 10_000, 'the test replica online at the main')

    proxy = await startDb(['db', 'proxy', '--port', '0', '--main', `127.0.0.1:${main.port}`, '--replicas', `127.0.0.1:${replicaPort}`, '--max-lag-bytes', String(LIMIT)])
    p = client(proxy.port)
  })

  after(async () => {
    p?.disconnect()
    m?.disconnect()
    link?.destroy()
    await stop(proxy)
    await stop(main)
    await new Promise((resolve) => replicaServer?.close(resolve))
    await removeTempDirs()
  })

  it('sends reads to a replica within the limit, to the main while it lags more, and back once it catches up', async () => {
    // Caught up: the replica serves.
    ack(await mainOffset())
    await waitFor(async () => {
      const r = await reads()
      return r.state === 'up' && r.lag <= LIMIT
    }, 10_000, 'replica0 up and within the limit')
    for (let i = 0; i < 5; i++) expect(await p.get('k')).to.equal('replica')

    // A write of 5000 bytes the replica does not acknowledge: it lags beyond the limit.
    const before = await mainOffset()
    await m.set('big', 'x'.repeat(5000))
    expect((await mainOffset()) - before).to.be.greaterThan(LIMIT)
    await waitFor(async () => (await reads()).lag > LIMIT, 10_000, 'the proxy to see replica0 lagging')
    const lagging = await reads()
    expect(lagging.state).to.equal('up') // it answers PING: only the lag keeps it out
    for (let i = 0; i < 5; i++) expect(await p.get('k')).to.equal('main')
    expect((await reads()).mainReads).to.equal(lagging.mainReads + 5)

    // Acknowledged up to a point still more than the limit behind: still the main.
    const now = await mainOffset()
    ack(now - LIMIT - 500)
    // (The main may add its 14-byte periodic PING to the stream meanwhile.)
    await waitFor(async () => {
      const {lag} = await reads()
      return lag >= LIMIT + 500 && lag < LIMIT + 600
    }, 10_000, 'the proxy to see the partial ack')
    expect(await p.get('k')).to.equal('main')

    // Caught up: the replica serves again.
    ack(now)
    await waitFor(async () => (await reads()).lag <= LIMIT, 10_000, 'the proxy to see replica0 caught up')
    for (let i = 0; i < 5; i++) expect(await p.get('k')).to.equal('replica')
  })
})
