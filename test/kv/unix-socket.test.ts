import {expect} from 'chai'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {RespClient} from '../../src/kv/client.js'
import {connectUpstream} from '../../src/kv/membership.js'
import {KvServer} from '../../src/kv/server.js'
import {TestCluster, waitFor} from './helpers.js'

/** Sends raw bytes on a Unix socket and collects what comes back until the peer closes or `ms` pass. */
function rawExchange(file: string, data: Buffer, ms = 1500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({path: file})
    let out = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(out)
    }, ms)
    socket.on('data', (chunk) => (out += chunk.toString('latin1')))
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(out)
    })
    socket.on('connect', () => socket.write(data))
  })
}

describe('kv server Unix socket beside TCP (in-process servers)', function () {
  this.timeout(30_000)
  const dir = mkdtempSync(path.join(tmpdir(), 'kv-unix-'))
  const servers: KvServer[] = []

  async function startServer(number: number, options: {unixSocket?: string | false} = {}): Promise<KvServer> {
    const server = new KvServer({number, host: '127.0.0.1', port: 0, dataDir: path.join(dir, `s${number}-${servers.length}`), ...options})
    await server.start()
    servers.push(server)
    return server
  }

  after(async () => {
    for (const server of servers) await server.stop().catch(() => undefined)
    rmSync(dir, {recursive: true, force: true})
  })

  it('listens on kv.sock in its data dir, advertises it in INFO, and connectUpstream uses it', async () => {
    const server = await startServer(0)
    const file = server.unixSocketPath!
    expect(file).to.equal(path.resolve(dir, 's0-0', 'kv.sock'))
    expect(existsSync(file)).to.equal(true)
    const tcp = await RespClient.connect({...server.address})
    const info = (await tcp.callString('INFO'))!
    tcp.close()
    expect(info).to.include(`\r\nunix_socket:${file}\r\n`).and.match(/\r\nrun_id:[0-9a-f]{12}\r\n/)
    const client = await connectUpstream(server.address)
    try {
      expect(client.path).to.equal(file)
      expect(await client.call('XSET', '0:k', '5', '0', 'v1')).to.equal(1)
      expect(String(await client.call('GET', '0:k'))).to.equal('v1')
    } finally {
      client.close()
    }
    // The write over the socket is the same store TCP sees.
    const check = await RespClient.connect({...server.address})
    expect(await check.callString('GET', '0:k')).to.equal('v1')
    check.close()
  })

  it('survives garbage on the Unix socket and keeps serving both sockets', async () => {
    const server = await startServer(1)
    const file = server.unixSocketPath!
    const reply = await rawExchange(file, Buffer.from('*2\r\n$3\r\nGET\r\n$-7\r\n\x00\xff garbage\r\n'))
    expect(reply).to.match(/^-ERR /)
    await rawExchange(file, Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 42, 57, 57, 57, 57, 57, 57, 57, 57, 57, 57, 13, 10]), 300)
    const unix = await RespClient.connect({host: 'unix', port: 0, path: file})
    expect(await unix.callString('PING')).to.equal('PONG')
    unix.close()
    const tcp = await RespClient.connect({...server.address})
    expect(await tcp.callString('PING')).to.equal('PONG')
    tcp.close()
  })

  it('falls back to TCP when the socket file is gone, or leads to another server', async () => {
    const gone = await startServer(2)
    rmSync(gone.unixSocketPath!)
    const viaTcp = await connectUpstream(gone.address)
    expect(viaTcp.path).to.equal(undefined)
    expect(await viaTcp.callString('PING')).to.equal('PONG')
    viaTcp.close()

    // A server whose advertised path now belongs to another server (another
    // host's data dir at the same path looks like this): the run_id differs.
    const shared = path.join(dir, 'shared.sock')
    const first = await startServer(3, {unixSocket: shared})
    const second = await startServer(4, {unixSocket: shared})
    expect(first.unixSocketPath).to.equal(shared)
    expect(second.unixSocketPath).to.equal(shared)
    const toFirst = await connectUpstream(first.address)
    expect(toFirst.path).to.equal(undefined)
    expect(await toFirst.call('XSET', '0:mine', '7', '0', 'first')).to.equal(1)
    toFirst.close()
    const toSecond = await connectUpstream(second.address)
    expect(toSecond.path).to.equal(shared)
    expect(await toSecond.callString('GET', '0:mine')).to.equal(null)
    toSecond.close()
  })

  it('unixSocket false: no socket, no INFO line, TCP only', async () => {
    const server = await startServer(5, {unixSocket: false})
    expect(server.unixSocketPath).to.equal(null)
    expect(existsSync(path.join(dir, 's5-5', 'kv.sock'))).to.equal(false)
    const client = await connectUpstream(server.address)
    expect(client.path).to.equal(undefined)
    expect(await client.callString('INFO')).to.not.include('unix_socket:')
    client.close()
  })
})

describe('kv router upstream over Unix sockets (real processes)', function () {
  this.timeout(90_000)
  const cluster = new TestCluster({antiEntropyMs: 0})

  before(async () => {
    await cluster.start()
  })
  after(async () => {
    await cluster.stop()
  })

  const viaLines = (): string[] => cluster.routerLog().split('\n').filter((line) => / up at 127\.0\.0\.1:\d+ \(via .*kv\.sock\)$/.test(line))

  it('the router reaches every server through its kv.sock and serves SET/GET through it', async () => {
    await waitFor('three servers up via their Unix sockets', () => viaLines().length >= 3)
    for (let i = 0; i < 3; i++) expect(viaLines().some((line) => line.includes(`server ${i} up`) && line.includes(cluster.serverDir(i)))).to.equal(true)
    const client = cluster.redis(0)
    const pipeline = client.pipeline()
    for (let i = 0; i < 200; i++) pipeline.set(`u${i}`, `v${i}`).get(`u${i}`)
    const results = (await pipeline.exec())!
    for (let i = 0; i < 200; i++) {
      expect(results[2 * i]).to.deep.equal([null, 'OK'])
      expect(results[2 * i + 1]).to.deep.equal([null, `v${i}`])
    }
  })

  it('a SIGKILLed server is marked down, gets hints, and is reached through its new socket when it returns', async () => {
    const client = cluster.redis(3)
    await cluster.killServer(0)
    await cluster.waitUp(2)
    for (let i = 0; i < 100; i++) expect(await client.set(`k${i}`, `w${i}`)).to.equal('OK')
    expect((await cluster.info()).members[0].hints).to.be.greaterThan(0)
    const before = viaLines().filter((line) => line.includes('server 0 up')).length
    await cluster.startServer(0)
    await cluster.waitUp(3)
    await waitFor('hints delivered', async () => (await cluster.info()).hints_pending === 0, 20_000)
    expect(viaLines().filter((line) => line.includes('server 0 up')).length).to.equal(before + 1)
    // Every other server in turn: server 0 (reached by its socket) must hold what the hints carried.
    for (const victim of [1, 2]) {
      await cluster.killServer(victim)
      await cluster.waitUp(2)
      for (let i = 0; i < 100; i++) expect(await client.get(`k${i}`)).to.equal(`w${i}`)
      await cluster.startServer(victim)
      await cluster.waitUp(3)
    }
  })

  it('falls back to TCP when a server runs without the socket, or the router finds its file removed', async () => {
    await cluster.killServer(1)
    await cluster.waitUp(2)
    const log = cluster.routerLog().length
    await cluster.startServer(1, ['--unix-socket', 'none'])
    await cluster.waitUp(3)
    await waitFor('server 1 up over TCP', () => /server 1 up at 127\.0\.0\.1:\d+\n/.test(cluster.routerLog().slice(log)))

    // The socket file of server 2 removed while it runs: a restarted router cannot use it.
    rmSync(path.join(cluster.serverDir(2), 'kv.sock'))
    await cluster.killRouter()
    await cluster.startRouter()
    await cluster.waitUp(3)
    const lines = cluster.routerLog()
    expect(lines).to.match(/server 2 up at 127\.0\.0\.1:\d+\n/)
    expect(lines).to.match(/server 1 up at 127\.0\.0\.1:\d+\n/)
    expect(lines).to.match(/server 0 up at 127\.0\.0\.1:\d+ \(via .*kv\.sock\)\n/)
    const client = cluster.redis(4)
    for (let i = 0; i < 100; i++) expect(await client.set(`f${i}`, `x${i}`)).to.equal('OK')
    for (let i = 0; i < 100; i++) expect(await client.get(`f${i}`)).to.equal(`x${i}`)
  })
})
