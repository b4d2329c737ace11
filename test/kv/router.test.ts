import net from 'node:net'
import {randomBytes} from 'node:crypto'

import {expect} from 'chai'

import {runCli} from '../helpers/cli.js'
import {TestCluster, waitFor} from './helpers.js'

/** Sends raw bytes on a new connection and collects what comes back until the peer closes or `ms` pass. */
function raw(port: number, data: Buffer | string, ms = 1500): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({host: '127.0.0.1', port})
    let out = ''
    const done = (): void => {
      socket.destroy()
      resolve(out)
    }
    const timer = setTimeout(done, ms)
    socket.on('data', (chunk) => (out += chunk.toString('latin1')))
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(out)
    })
    socket.on('error', () => undefined)
    socket.write(data)
  })
}

describe('kv router (3 servers, RF=2, real processes)', function () {
  this.timeout(60_000)
  const cluster = new TestCluster({antiEntropyMs: 1000})

  before(async () => {
    await cluster.start()
  })
  after(async () => {
    await cluster.stop()
  })

  it('serves SELECT, SET, GET, DEL, EXISTS, KEYS and DBSIZE to ioredis, with databases isolated', async () => {
    const a = cluster.redis(0)
    const b = cluster.redis(5)
    expect(await a.set('user:1', 'alice')).to.equal('OK')
    expect(await a.set('user:2', 'bob')).to.equal('OK')
    expect(await a.set('other', 'x')).to.equal('OK')
    expect(await b.set('user:1', 'in-db-5')).to.equal('OK')
    expect(await a.get('user:1')).to.equal('alice')
    expect(await b.get('user:1')).to.equal('in-db-5')
    expect(await b.get('user:2')).to.equal(null)
    expect(await a.get('missing')).to.equal(null)
    expect(await a.exists('user:1', 'user:2', 'missing', 'user:1')).to.equal(3)
    expect((await a.keys('user:*')).sort()).to.deep.equal(['user:1', 'user:2'])
    expect((await a.keys('user:[1]'))).to.deep.equal(['user:1'])
    expect((await a.keys('?ther'))).to.deep.equal(['other'])
    expect(await b.keys('*')).to.deep.equal(['user:1'])
    expect(await a.dbsize()).to.equal(3)
    expect(await b.dbsize()).to.equal(1)
    expect(await a.del('user:1', 'missing', 'other')).to.equal(2)
    expect(await a.get('user:1')).to.equal(null)
    expect(await a.exists('user:1')).to.equal(0)
    expect(await a.dbsize()).to.equal(1)
    expect(await b.get('user:1')).to.equal('in-db-5')
    await b.select(15)
    expect(await b.get('user:1')).to.equal(null)
    let failure: Error | undefined
    await b.select(16).catch((error: Error) => (failure = error))
    expect(failure?.message).to.match(/^ERR/)
    expect(await a.call('NOSUCH', 'x').catch((error: Error) => error.message)).to.match(/^ERR unknown command/)
  })

  it("shows INFO's # Cluster section line for line", async () => {
    const text = await cluster.redis().info('cluster')
    const lines = text.split('\r\n').filter((line) => line.length > 0)
    expect(lines.slice(0, 6)).to.deep.equal(['# Cluster', 'servers:3', 'servers_up:3', 'replicas:2', 'hints_pending:0', 'buffered_writes:0'])
    expect(lines).to.have.length(9)
    lines.slice(6).forEach((line, i) => expect(line).to.match(new RegExp(`^server${i}:addr=127\\.0\\.0\\.1:\\d+,state=up,last_heartbeat_ms=\\d+,hints=0$`)))
    const full = await cluster.redis().info()
    expect(full).to.include('# Server').and.include('# Cluster\r\nservers:3\r\n')
  })

  it('answers pipelined requests in order', async () => {
    const client = cluster.redis(2)
    const pipeline = client.pipeline()
    for (let i = 0; i < 500; i++) pipeline.set(`p${i}`, `v${i}`).get(`p${i}`)
    const results = (await pipeline.exec())!
    for (let i = 0; i < 500; i++) {
      expect(results[2 * i]).to.deep.equal([null, 'OK'])
      expect(results[2 * i + 1]).to.deep.equal([null, `v${i}`])
    }
    // many requests in one write on a raw socket, answered in order (inline and RESP forms mixed)
    const text = await raw(cluster.routerPort, 'SELECT 2\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$2\r\np7\r\nECHO b\r\nQUIT\r\n')
    expect(text).to.equal('+OK\r\n+PONG\r\n$1\r\na\r\n$2\r\nv7\r\n$1\r\nb\r\n+OK\r\n')
  })

  it('orders pipelined commands on one key behind the one in flight, a keyless one behind all', async () => {
    const client = cluster.redis(4)
    // Held and cached by the replicas already: a GET not ordered behind the pipeline's first SET would read it.
    await client.set('same', 'old')
    const pipeline = client.pipeline()
    for (let i = 0; i < 300; i++) pipeline.set('same', `v${i}`).get('same').set(`other${i % 3}`, `o${i}`).exists('same', `other${i % 3}`)
    pipeline.keys('other*').del('same', 'other0').get('same')
    const results = (await pipeline.exec())!
    for (let i = 0; i < 300; i++) {
      expect(results[4 * i]).to.deep.equal([null, 'OK'])
      expect(results[4 * i + 1]).to.deep.equal([null, `v${i}`])
      expect(results[4 * i + 3]).to.deep.equal([null, 2])
    }
    const tail = results.slice(1200)
    expect((tail[0][1] as string[]).sort()).to.deep.equal(['other0', 'other1', 'other2'])
    expect(tail[1]).to.deep.equal([null, 2])
    expect(tail[2]).to.deep.equal([null, null])
  })

  it('stores binary values of exactly 64 MiB and refuses larger ones without storing them', async () => {
    const client = cluster.redis(3)
    const big = randomBytes(64 * 1024 * 1024)
    expect(await client.set('big', big)).to.equal('OK')
    const back = await client.getBuffer('big')
    expect(back!.equals(big)).to.equal(true)
    const tooBig = Buffer.alloc(64 * 1024 * 1024 + 1, 7)
    const error = await client.set('huge', tooBig).catch((failure: Error) => failure)
    expect((error as Error).message).to.match(/^ERR value too large/)
    expect(await client.exists('huge')).to.equal(0)
    const binary = Buffer.from([0, 13, 10, 255, 36, 42])
    await client.set(Buffer.from([1, 0, 2]), binary)
    expect((await client.getBuffer(Buffer.from([1, 0, 2])))!.equals(binary)).to.equal(true)
    expect(await client.ping()).to.equal('PONG')
  })

  it('survives garbage on its port: PING still answers on a new connection', async () => {
    for (let i = 0; i < 5; i++) await raw(cluster.routerPort, randomBytes(64 * 1024), 300)
    const reply = await raw(cluster.routerPort, '*1\r\n$3\r\nSET\r\n*2\r\n$3\r\nfoo', 500)
    expect(reply).to.match(/^-ERR/)
    expect(await raw(cluster.routerPort, '*2\r\n$3\r\nGET\r\nxx\r\n', 500)).to.match(/^-ERR Protocol error/)
    expect(await raw(cluster.routerPort, 'PING\r\n', 500)).to.equal('+PONG\r\n')
    expect(cluster.router!.exitCode).to.equal(null)
  })

  it('keeps every server serving through garbage on its port, and reports its disk in INFO', async () => {
    const port = Number((await cluster.info()).members[0].addr.split(':')[1])
    for (let i = 0; i < 3; i++) await raw(port, randomBytes(64 * 1024), 300)
    expect(await raw(port, '*2\r\n$4\r\nXSET\r\n$99999999999\r\n', 500)).to.match(/^-ERR Protocol error/)
    expect(await raw(port, '*3\r\n$4\r\nXSET\r\n$1\r\nk\r\n$1\r\nv\r\n', 500)).to.match(/^-ERR/)
    expect(await raw(port, 'PING\r\n', 500)).to.equal('+PONG\r\n')
    expect(cluster.servers[0]!.exitCode).to.equal(null)
    const info = await raw(port, 'INFO\r\n', 500)
    expect(info).to.match(/\r\n# Disk\r\ndisk_total:\d+\r\ndisk_free:\d+\r\ndisk_device:\d+\r\n/)
    expect((await cluster.info()).servers_up).to.equal(3)
  })

  it('offers GETV, VERSION, CAS, CASDEL and LOCATE, and servers answer direct reads of <db>:<key>', async () => {
    const client = cluster.redis(4)
    const v1 = Number(await client.call('CAS', 'meta', '0', 'first'))
    expect(v1).to.be.greaterThan(0)
    expect(await client.call('CAS', 'meta', '0', 'again').catch((error: Error) => error.message)).to.match(/^CASFAIL/)
    const [value, version] = (await client.call('GETV', 'meta')) as [string, number]
    expect(value).to.equal('first')
    expect(version).to.equal(v1)
    expect(await client.call('VERSION', 'meta')).to.equal(v1)
    expect(await client.call('VERSION', 'never-set')).to.equal(null)
    const v2 = Number(await client.call('CAS', 'meta', String(v1), 'second'))
    expect(v2).to.be.greaterThan(v1)
    expect(await client.call('VERSION', 'meta')).to.equal(v2)
    expect(await client.get('meta')).to.equal('second')
    const addresses = (await client.call('LOCATE', 'meta')) as string[]
    expect(addresses).to.have.length(2)
    for (const address of addresses) {
      const direct = new (await import('ioredis')).Redis({host: '127.0.0.1', port: Number(address.split(':')[1]), maxRetriesPerRequest: 0})
      try {
        expect(await direct.get('4:meta')).to.equal('second')
      } finally {
        direct.disconnect()
      }
    }
    expect(await client.call('CASDEL', 'meta', String(v1)).catch((error: Error) => error.message)).to.match(/^CASFAIL/)
    expect(Number(await client.call('CASDEL', 'meta', String(v2)))).to.be.greaterThan(v2)
    expect(await client.get('meta')).to.equal(null)
    expect(await client.call('VERSION', 'meta')).to.equal(null)
  })

  it('cluster status prints the table and --json, from --router or DISK_CLUSTER', async () => {
    const table = await runCli(['cluster', 'status', '--router', `127.0.0.1:${cluster.routerPort}`])
    expect(table.code, table.stderr).to.equal(0)
    expect(table.stdout).to.match(/servers 3\/3 up/)
    expect(table.stdout).to.match(/^SERVER\s+ADDRESS\s+STATE\s+HEARTBEAT\s+KEYS\s+HINTS$/m)
    expect(table.stdout).to.match(/^0\s+127\.0\.0\.1:\d+\s+up\s+\d+ ms ago\s+\d+\s+0$/m)
    const json = await runCli(['cluster', 'status', '--json'], {env: {DISK_CLUSTER: `127.0.0.1:${cluster.routerPort}`}})
    expect(json.code, json.stderr).to.equal(0)
    const status = JSON.parse(json.stdout)
    expect(status).to.include({servers: 3, servers_up: 3, replicas: 2})
    expect(status.members).to.have.length(3)
    expect(status.members[0]).to.include({number: 0, state: 'up', hints: 0})
    expect(status.members[0].keys).to.be.a('number')
    const down = await runCli(['cluster', 'status', '--router', '127.0.0.1:1'])
    expect(down.code).to.equal(5)
  })

  it('shows a killed server down within 5 s', async () => {
    await cluster.killServer(2)
    const started = Date.now()
    await waitFor('server 2 down', async () => (await cluster.info()).members[2].state === 'down', 5000, 50)
    expect(Date.now() - started).to.be.below(5000)
    const info = await cluster.info()
    expect(info.servers_up).to.equal(2)
  })
})
