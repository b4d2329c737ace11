// A SIGKILLed main loses no acknowledged write; garbage never stops a server.
import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import net from 'node:net'
import path from 'node:path'
import type {Redis} from 'ioredis'

import {client, info, startDb, removeTempDirs, stop, tempDir, waitFor, type Proc} from '../helpers/db.js'

/** Writes `data` to a port and waits for the server to answer or close. */
function send(port: number, data: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({host: '127.0.0.1', port}, () => socket.end(data))
    socket.on('data', () => undefined)
    socket.on('error', () => resolve())
    socket.on('close', () => resolve())
    setTimeout(() => {
      socket.destroy()
      resolve()
    }, 1000)
  })
}

describe('db durability and garbage', function () {
  this.timeout(60_000)
  let dir: string
  const procs: Proc[] = []
  const clients: Redis[] = []

  before(async () => {
    dir = await tempDir()
  })

  after(async () => {
    for (const c of clients) c.disconnect()
    for (const proc of procs) await stop(proc)
    await removeTempDirs()
  })

  it('a SIGKILLed and restarted main has every acknowledged write; its replica follows the new one', async () => {
    const main = await startDb(['db', 'main', '--port', '0', '--data-dir', path.join(dir, 'main')])
    procs.push(main)
    const replica = await startDb(['db', 'replica', '--port', '0', '--main', `127.0.0.1:${main.port}`, '--data-dir', path.join(dir, 'replica')])
    procs.push(replica)
    const m = client(main.port)
    const r = client(replica.port)
    clients.push(m, r)
    const acked = new Map<string, string>()
    let increments = 0
    const writes: Array<Promise<unknown>> = []
    for (let i = 0; i < 20_000; i++) {
      const key = `k${i}`
      const value = `v${i}-${'x'.repeat(i % 50)}`
      writes.push(m.set(key, value).then(() => acked.set(key, value), () => undefined))
      writes.push(m.incr('counter').then(() => increments++, () => undefined))
    }
    await waitFor(() => acked.size >= 3000, 20_000, '3000 acknowledged writes')
    main.child.kill('SIGKILL')
    await Promise.all(writes)
    await stop(main)
    expect(acked.size).to.be.lessThan(20_000) // the kill landed mid-stream

    const again = await startDb(['db', 'main', '--port', String(main.port), '--data-dir', path.join(dir, 'main')])
    procs.push(again)
    const m2 = client(again.port)
    clients.push(m2)
    const keys = [...acked.keys()]
    for (let i = 0; i < keys.length; i += 500) {
      const values = await m2.mget(...keys.slice(i, i + 500))
      values.forEach((value, j) => expect(value, keys[i + j]).to.equal(acked.get(keys[i + j])))
    }
    expect(Number(await m2.get('counter'))).to.be.at.least(increments)

    await m2.set('after-restart', 'yes')
    await waitFor(async () => (await r.get('after-restart')) === 'yes', 20_000, 'the replica follows the restarted main')
    expect(await r.get(keys[keys.length - 1])).to.equal(acked.get(keys[keys.length - 1]))
    await waitFor(async () => (await info(m2, 'replication')).connected_slaves === '1', 5000, 'replica attached')
  })

  it('garbage on the main, replica and proxy ports stops none of them', async () => {
    const main = await startDb(['db', 'main', '--port', '0', '--data-dir', path.join(dir, 'g-main')])
    const replica = await startDb(['db', 'replica', '--port', '0', '--main', `127.0.0.1:${main.port}`, '--data-dir', path.join(dir, 'g-replica')])
    const proxy = await startDb(['db', 'proxy', '--port', '0', '--main', `127.0.0.1:${main.port}`, '--replicas', `127.0.0.1:${replica.port}`])
    procs.push(main, replica, proxy)
    const m = client(main.port)
    clients.push(m)
    await m.set('still', 'here')
    const garbage = [
      Buffer.from('*3\r\n$3\r\nSET\r\n$99999999999\r\n'),
      Buffer.from('*-5\r\n*2\r\n$1\r\nx\r\n'),
      Buffer.from('$5\r\nhello\r\n'),
      Buffer.from('PSYNC ? -1\r\n'),
      Buffer.from('REPLCONF ACK notanumber\r\nREPLCONF listening-port x\r\nWAIT x y\r\n'),
      Buffer.from('SYNC\r\n'),
      Buffer.from('*2\r\n$3\r\nGET\r\n$3\r\nab'),
      Buffer.from('\r\n\r\n\0\0\0' + 'A'.repeat(100_000)),
    ]
    let seed = 12345
    for (let i = 0; i < 20; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      garbage.push(Buffer.concat([Buffer.from('*2\r\n$3\r\nGET\r\n'), randomBytes(64 + (seed % 512))]))
    }
    for (const port of [main.port, replica.port, proxy.port]) for (const data of garbage) await send(port, data)
    for (const port of [main.port, replica.port, proxy.port]) {
      const c = client(port)
      clients.push(c)
      expect(await c.ping()).to.equal('PONG')
      await waitFor(async () => (await c.get('still')) === 'here', 10_000, `GET on port ${port}`)
    }
    for (const proc of [main, replica, proxy]) expect(proc.child.exitCode).to.equal(null)
  })
})
