import {expect} from 'chai'
import {promises as dns} from 'node:dns'
import {rmSync} from 'node:fs'

import {DnsServer} from '../../src/dns/server.js'
import {makeQuery, Rcode, type Message} from '../../src/dns/wire.js'
import {copyFixtures, findSharedPort, join, tcpAsk, udpAsk} from './helpers.js'

// The three-level chain of DESIGN.md §7, all on one port:
//   127.0.0.1  "."         delegates test. (glue ns.test = .2)
//   127.0.0.2  test.       delegates disk.test. (glue) and lab.test. (glueless)
//   127.0.0.3  disk.test.  and lab.test.
//   127.0.0.4  the resolver, root = 127.0.0.1
describe('dns resolver over a three-level chain', function () {
  this.timeout(30_000)
  let dir: string
  let port: number
  let resolver: DnsServer
  const servers: DnsServer[] = []
  const upstream = (): number => resolver.stats.upstream!.upstreamQueries
  /** A fresh Node resolver per query, so c-ares's own query cache cannot answer for ours. */
  const nodeResolver = (): dns.Resolver => {
    const r = new dns.Resolver({timeout: 3000, tries: 2})
    r.setServers([`127.0.0.4:${port}`])
    return r
  }
  const ask = (name: string, type: string, rd = true): Promise<Message> =>
    udpAsk('127.0.0.4', port, makeQuery(Math.floor(Math.random() * 65536), name, type, {rd}))

  before(async () => {
    dir = copyFixtures()
    port = await findSharedPort(['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'])
    const zones: Array<[string, string[]]> = [
      ['127.0.0.1', ['root.zone']],
      ['127.0.0.2', ['test.zone']],
      ['127.0.0.3', ['disk.test.zone', 'lab.test.zone']],
    ]
    for (const [host, files] of zones) {
      const server = new DnsServer({host, port, zoneFiles: files.map((file) => join(dir, file))})
      await server.start()
      servers.push(server)
    }
    resolver = new DnsServer({host: '127.0.0.4', port, resolver: true, roots: [{host: '127.0.0.1', port}]})
    await resolver.start()
    servers.push(resolver)
  })
  after(async () => {
    for (const server of servers) await server.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  it("resolves router.disk.test A for Node's own dns.Resolver, from the roots down", async () => {
    const addresses = await nodeResolver().resolve4('router.disk.test', {ttl: true})
    expect(addresses).to.have.length(1)
    expect(addresses[0].address).to.equal('10.0.0.1')
    expect(addresses[0].ttl).to.be.within(295, 300)
    expect(upstream()).to.equal(3) // root, test., disk.test.
  })

  it('answers the second query from the cache: smaller TTL, no new upstream queries', async () => {
    const first = await nodeResolver().resolve4('node2.disk.test', {ttl: true})
    const before = upstream()
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const second = await nodeResolver().resolve4('node2.disk.test', {ttl: true})
    expect(second.map((a) => a.address)).to.deep.equal(['10.0.0.12'])
    expect(second[0].ttl).to.be.lessThan(first[0].ttl)
    expect(upstream()).to.equal(before)
  })

  it('resolves an SRV record for dns.Resolver, starting from the cached delegation', async () => {
    const before = upstream()
    const records = await nodeResolver().resolveSrv('_disk._tcp.disk.test')
    expect(records).to.deep.equal([{name: 'router.disk.test', port: 6379, priority: 0, weight: 5}])
    expect(upstream() - before).to.equal(1) // straight to 127.0.0.3
  })

  it('caches NXDOMAIN negatively, for every type at that name, with the SOA and RA set', async () => {
    const first = await ask('missing.disk.test', 'A')
    expect(first.rcode).to.equal(Rcode.NXDOMAIN)
    expect(first.ra).to.equal(true)
    expect(first.aa).to.equal(false)
    expect(first.authorities.map((rr) => rr.type)).to.deep.equal(['SOA'])
    const before = upstream()
    const again = await ask('missing.disk.test', 'AAAA')
    expect(again.rcode).to.equal(Rcode.NXDOMAIN)
    expect(again.authorities[0].ttl).to.be.at.most(60)
    let code: string | undefined
    try {
      await nodeResolver().resolve4('missing.disk.test')
    } catch (error) {
      code = (error as NodeJS.ErrnoException).code
    }
    expect(code).to.equal('ENOTFOUND')
    expect(upstream()).to.equal(before)
  })

  it('caches NODATA negatively', async () => {
    const first = await ask('router.disk.test', 'TXT')
    expect(first.rcode).to.equal(Rcode.NOERROR)
    expect(first.answers).to.have.length(0)
    const before = upstream()
    const again = await ask('router.disk.test', 'TXT')
    expect(again.answers).to.have.length(0)
    expect(again.authorities.map((rr) => rr.type)).to.deep.equal(['SOA'])
    expect(upstream()).to.equal(before)
  })

  it('answers a query without RD from the cache only: no answers for an uncached name, never REFUSED', async () => {
    const before = upstream()
    const uncached = await ask('node1.disk.test', 'A', false)
    expect(uncached.rcode).to.equal(Rcode.NOERROR)
    expect(uncached.ra).to.equal(true)
    expect(uncached.answers).to.have.length(0)
    // the best referral the cache holds: disk.test's servers
    expect(uncached.authorities.map((rr) => `${rr.name} ${rr.type}`)).to.include('disk.test NS')
    const cached = await ask('router.disk.test', 'A', false)
    expect(cached.answers.map((rr) => rr.data)).to.deep.equal(['10.0.0.1'])
    const elsewhere = await ask('www.example.org', 'A', false)
    expect(elsewhere.rcode).to.equal(Rcode.NOERROR)
    expect(elsewhere.answers).to.have.length(0)
    expect(upstream()).to.equal(before)
  })

  it('resolves the name of a glueless server before asking it, and chases CNAMEs', async () => {
    const host = await ask('host.lab.test', 'A')
    expect(host.answers.map((rr) => rr.data)).to.deep.equal(['10.1.0.5'])
    const alias = await nodeResolver().resolve4('alias.disk.test')
    expect(alias).to.deep.equal(['10.0.0.1'])
  })

  it('retries a truncated upstream answer over TCP and returns it whole (to dns.Resolver, which retries over TCP too)', async () => {
    const tcpBefore = resolver.stats.upstream!.upstreamTcp
    const addresses = await nodeResolver().resolve4('big.disk.test')
    expect(addresses).to.have.length(80)
    expect(resolver.stats.upstream!.upstreamTcp).to.equal(tcpBefore + 1)
    const overTcp = await tcpAsk('127.0.0.4', port, makeQuery(3, 'big.disk.test', 'A'))
    expect(overTcp.answers).to.have.length(80)
    expect(overTcp.ra).to.equal(true)
  })

  it('answers SERVFAIL, not a hang, when the servers of a zone do not answer', async () => {
    // sub.disk.test is delegated to 127.0.0.9, where nothing listens.
    const started = Date.now()
    const reply = await ask('x.sub.disk.test', 'A')
    expect(reply.rcode).to.equal(Rcode.SERVFAIL)
    expect(Date.now() - started).to.be.below(6000)
  })
})
