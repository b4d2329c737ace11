import {expect} from 'chai'
import {createSocket, type Socket} from 'node:dgram'
import {rmSync, writeFileSync} from 'node:fs'

import {DnsServer} from '../../src/dns/server.js'
import {runCli} from '../helpers/cli.js'
import {copyFixtures, findSharedPort, join, spawnServe, type ServeProcess, waitFor} from './helpers.js'

describe('dns resolve and dns serve commands', function () {
  this.timeout(60_000)
  let dir: string
  let serve: ServeProcess
  let server: string

  before(async () => {
    dir = copyFixtures()
    serve = await spawnServe(['--port', '0', '--zone', join(dir, 'disk.test.zone')])
    server = `127.0.0.1:${serve.port}`
  })
  after(async () => {
    await serve.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  it('dns serve prints one listening line per socket on stdout', async () => {
    expect(serve.stdout()).to.equal(`listening udp ${server}\nlistening tcp ${server}\n`)
    // The zone line goes to stderr after them: a second pipe, which may reach us later.
    await waitFor(() => serve.stderr().includes('serving zone disk.test.'), 10_000, 'the zone line on stderr')
  })

  it('prints answers dig-style and exits 0', async () => {
    const result = await runCli(['dns', 'resolve', 'router.disk.test', '--server', server])
    expect(result.code).to.equal(0)
    expect(result.stdout).to.equal('router.disk.test.\t300\tIN\tA\t10.0.0.1\n')
    const srv = await runCli(['dns', 'resolve', '_disk._tcp.disk.test', 'SRV', '--server', server])
    expect(srv.stdout).to.equal('_disk._tcp.disk.test.\t300\tIN\tSRV\t0 5 6379 router.disk.test.\n')
  })

  it('prints the whole answer as JSON with --json', async () => {
    const result = await runCli(['dns', 'resolve', 'alias.disk.test', '--server', server, '--json', '--no-recurse'])
    expect(result.code).to.equal(0)
    const json = JSON.parse(result.stdout)
    expect(json).to.include({name: 'alias.disk.test.', type: 'A', rcode: 'NOERROR', transport: 'udp'})
    expect(json.flags).to.deep.equal({aa: true, tc: false, rd: false, ra: false})
    expect(json.answers.map((rr: {type: string; data: unknown}) => [rr.type, rr.data])).to.deep.equal([
      ['CNAME', 'www.disk.test'],
      ['CNAME', 'router.disk.test'],
      ['A', '10.0.0.1'],
    ])
  })

  it('exits 4 on NXDOMAIN, with one error line or a JSON error', async () => {
    const result = await runCli(['dns', 'resolve', 'nope.disk.test', '--server', server])
    expect(result.code).to.equal(4)
    expect(result.stdout).to.equal('')
    expect(result.stderr.trim()).to.equal('Error: nope.disk.test.: no such domain (NXDOMAIN)')
    const json = await runCli(['dns', 'resolve', 'nope.disk.test', '--server', server, '--json'])
    expect(json.code).to.equal(4)
    expect(JSON.parse(json.stdout).error).to.include({exitCode: 4, code: 'ENOTFOUND_FILE'})
  })

  it('exits 0 with nothing on stdout for NODATA, and a note on stderr', async () => {
    const result = await runCli(['dns', 'resolve', 'router.disk.test', 'TXT', '--server', server])
    expect(result.code).to.equal(0)
    expect(result.stdout).to.equal('')
    expect(result.stderr).to.include('router.disk.test. has no TXT records (NODATA)')
  })

  it('retries a truncated UDP answer over TCP, and --tcp asks over TCP only; both come back whole', async () => {
    const retried = JSON.parse((await runCli(['dns', 'resolve', 'big.disk.test', '--server', server, '--json'])).stdout)
    expect(retried.transport).to.equal('tcp')
    expect(retried.answers).to.have.length(80)
    const tcp = await runCli(['dns', 'resolve', 'big.disk.test', '--server', server, '--tcp'])
    expect(tcp.code).to.equal(0)
    expect(tcp.stdout.trim().split('\n')).to.have.length(80)
  })

  it('exits 1 when refused, 5 on a timeout, 2 on a bad type', async () => {
    const refused = await runCli(['dns', 'resolve', 'example.com', '--server', server])
    expect(refused.code).to.equal(1)
    expect(refused.stderr).to.include('(REFUSED)')
    const silent: Socket = createSocket('udp4')
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', () => resolve()))
    try {
      const timeout = await runCli(['dns', 'resolve', 'router.disk.test', '--server', `127.0.0.1:${silent.address().port}`, '--timeout', '300'])
      expect(timeout.code).to.equal(5)
      expect(timeout.stderr).to.match(/^Error: no answer from 127\.0\.0\.1:\d+/)
    } finally {
      silent.close()
    }
    const badType = await runCli(['dns', 'resolve', 'router.disk.test', 'BOGUS', '--server', server])
    expect(badType.code).to.equal(2)
  })

  it('dns serve rejects --resolver without --root, and an unreadable zone, with exit 2', async () => {
    const noRoot = await runCli(['dns', 'serve', '--port', '0', '--resolver'])
    expect(noRoot.code).to.equal(2)
    expect(noRoot.stderr).to.include('--root')
    writeFileSync(join(dir, 'broken.zone'), '$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\nx A not-an-address\n')
    const broken = await runCli(['dns', 'serve', '--port', '0', '--zone', join(dir, 'broken.zone')])
    expect(broken.code).to.equal(2)
    expect(broken.stderr).to.include('broken.zone:3')
  })
})

describe('dns serve --resolver as a process, asked by dns resolve', function () {
  this.timeout(60_000)
  let dir: string
  let port: number
  const servers: DnsServer[] = []
  let resolver: ServeProcess | undefined

  before(async () => {
    dir = copyFixtures()
    port = await findSharedPort(['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'])
    for (const [host, file] of [['127.0.0.1', 'root.zone'], ['127.0.0.2', 'test.zone'], ['127.0.0.3', 'disk.test.zone']]) {
      const server = new DnsServer({host, port, zoneFiles: [join(dir, file)]})
      await server.start()
      servers.push(server)
    }
    resolver = await spawnServe(['--host', '127.0.0.4', '--port', String(port), '--resolver', '--root', `127.0.0.1:${port}`, '-v'])
  })
  after(async () => {
    await resolver?.stop()
    for (const server of servers) await server.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  it('resolves through the chain, sets RA, and logs its upstream queries with -v', async () => {
    const result = await runCli(['dns', 'resolve', 'router.disk.test', '--server', `127.0.0.4:${port}`, '--json'])
    expect(result.code).to.equal(0)
    const json = JSON.parse(result.stdout)
    expect(json.flags.ra).to.equal(true)
    expect(json.answers.map((rr: {data: unknown}) => rr.data)).to.deep.equal(['10.0.0.1'])
    expect(resolver!.stderr()).to.match(/upstream #3 udp 127\.0\.0\.3:\d+ router\.disk\.test A -> NOERROR/)
  })

  it('returns a big answer whole: the resolver retries upstream over TCP, dns resolve retries over TCP too', async () => {
    const result = await runCli(['dns', 'resolve', 'big.disk.test', '--server', `127.0.0.4:${port}`, '--json'])
    const json = JSON.parse(result.stdout)
    expect(json.transport).to.equal('tcp')
    expect(json.answers).to.have.length(80)
    expect(resolver!.stderr()).to.match(/upstream #\d+ tcp 127\.0\.0\.3:\d+ big\.disk\.test A -> NOERROR/)
  })

  it('answers --no-recurse for an uncached name with no records (exit 0)', async () => {
    const result = await runCli(['dns', 'resolve', 'node1.disk.test', '--server', `127.0.0.4:${port}`, '--no-recurse', '--json'])
    expect(result.code).to.equal(0)
    const json = JSON.parse(result.stdout)
    expect(json.answers).to.deep.equal([])
    expect(json.flags).to.include({rd: false, ra: true})
  })

  it('stops cleanly on SIGTERM with exit 0 and reports the upstream query count', async () => {
    const code = await resolver!.stop()
    expect(code).to.equal(0)
    expect(resolver!.stderr()).to.match(/upstream queries: \d+ \(tcp 1\)/)
    resolver = undefined
  })
})
