import {expect} from 'chai'
import {rmSync} from 'node:fs'

import {DnsServer} from '../../src/dns/server.js'
import {encodeMessage, frame, makeQuery, Rcode, type Message, type SoaData} from '../../src/dns/wire.js'
import {copyFixtures, join, TcpConversation, tcpAsk, udpAsk, udpExchange} from './helpers.js'

describe('dns authoritative server', () => {
  let dir: string
  let server: DnsServer
  const ask = (name: string, type = 'A', options: {edns?: boolean} = {}): Promise<Message> =>
    udpAsk('127.0.0.1', server.port, makeQuery(Math.floor(Math.random() * 65536), name, type, {rd: false, ...options}))

  before(async () => {
    dir = copyFixtures()
    server = new DnsServer({port: 0, zoneFiles: [join(dir, 'disk.test.zone'), join(dir, 'lab.test.zone')]})
    await server.start()
  })
  after(async () => {
    await server.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  it('answers with AA set and echoes an OPT record to an EDNS query', async () => {
    const reply = await ask('router.disk.test')
    expect(reply.rcode).to.equal(Rcode.NOERROR)
    expect(reply.aa).to.equal(true)
    expect(reply.ra).to.equal(false)
    expect(reply.answers.map((rr) => [rr.name, rr.type, rr.ttl, rr.data])).to.deep.equal([['router.disk.test', 'A', 300, '10.0.0.1']])
    expect(reply.edns?.udpPayloadSize).to.equal(1232)
    const plain = await ask('router.disk.test', 'A', {edns: false})
    expect(plain.edns).to.equal(undefined)
  })

  it('answers NXDOMAIN with the zone SOA in authority, TTL capped by MINIMUM', async () => {
    const reply = await ask('nope.disk.test')
    expect(reply.rcode).to.equal(Rcode.NXDOMAIN)
    expect(reply.aa).to.equal(true)
    expect(reply.answers).to.have.length(0)
    expect(reply.authorities).to.have.length(1)
    expect(reply.authorities[0]).to.include({name: 'disk.test', type: 'SOA', ttl: 60})
    expect((reply.authorities[0].data as SoaData).mname).to.equal('ns1.disk.test')
  })

  it('answers NODATA (NOERROR, no answers, SOA) for a name without the type and for an empty non-terminal', async () => {
    for (const [name, type] of [['router.disk.test', 'MX'], ['deep.disk.test', 'A'], ['b.deep.disk.test', 'TXT']]) {
      const reply = await ask(name, type)
      expect(reply.rcode, name).to.equal(Rcode.NOERROR)
      expect(reply.aa).to.equal(true)
      expect(reply.answers).to.have.length(0)
      expect(reply.authorities.map((rr) => rr.type)).to.deep.equal(['SOA'])
    }
  })

  it('chases CNAMEs inside the zone and stops at one that leaves it', async () => {
    const chain = await ask('alias.disk.test')
    expect(chain.aa).to.equal(true)
    expect(chain.answers.map((rr) => `${rr.name} ${rr.type} ${String(rr.data)}`)).to.deep.equal([
      'alias.disk.test CNAME www.disk.test',
      'www.disk.test CNAME router.disk.test',
      'router.disk.test A 10.0.0.1',
    ])
    const away = await ask('away.disk.test')
    expect(away.rcode).to.equal(Rcode.NOERROR)
    expect(away.answers.map((rr) => `${rr.type} ${String(rr.data)}`)).to.deep.equal(['CNAME router.example'])
    const cname = await ask('www.disk.test', 'CNAME')
    expect(cname.answers.map((rr) => rr.type)).to.deep.equal(['CNAME'])
  })

  it('refers a delegated sub-zone: NS in authority, glue in additional, AA clear', async () => {
    const reply = await ask('host.sub.disk.test')
    expect(reply.rcode).to.equal(Rcode.NOERROR)
    expect(reply.aa).to.equal(false)
    expect(reply.answers).to.have.length(0)
    expect(reply.authorities.map((rr) => `${rr.name} ${rr.type} ${String(rr.data)}`)).to.deep.equal(['sub.disk.test NS ns.sub.disk.test'])
    expect(reply.additionals.map((rr) => `${rr.name} ${rr.type} ${String(rr.data)}`)).to.deep.equal(['ns.sub.disk.test A 127.0.0.9'])
  })

  it('serves SRV with the target address in additional, TXT strings, and several zones', async () => {
    const srv = await ask('_disk._tcp.disk.test', 'SRV')
    expect(srv.answers[0].data).to.deep.equal({priority: 0, weight: 5, port: 6379, target: 'router.disk.test'})
    expect(srv.additionals.map((rr) => rr.type)).to.have.members(['A', 'AAAA'])
    const txt = await ask('info.disk.test', 'TXT')
    expect(txt.answers[0]).to.deep.include({ttl: 600, data: ['disk cluster', 'v=1']})
    const lab = await ask('host.lab.test')
    expect(lab.answers[0].data).to.equal('10.1.0.5')
  })

  it('refuses names outside its zones, and zone transfers', async () => {
    const reply = await ask('example.com')
    expect(reply.rcode).to.equal(Rcode.REFUSED)
    expect(reply.answers).to.have.length(0)
    expect(reply.ra).to.equal(false)
    expect((await ask('disk.test', 'AXFR')).rcode).to.equal(Rcode.REFUSED)
  })

  it('limits UDP to 512 bytes without EDNS and to the advertised size with it, setting TC; TCP returns the whole answer', async () => {
    const classic = await ask('big.disk.test', 'A', {edns: false})
    expect(classic.tc).to.equal(true)
    expect(classic.answers).to.have.length(0)
    const edns = await ask('big.disk.test')
    expect(edns.tc).to.equal(true)
    const large = makeQuery(77, 'big.disk.test', 'A', {rd: false})
    large.edns!.udpPayloadSize = 4096
    const whole = await udpAsk('127.0.0.1', server.port, large)
    expect(whole.tc).to.equal(false)
    expect(whole.answers).to.have.length(80)
    const tcp = await tcpAsk('127.0.0.1', server.port, makeQuery(78, 'big.disk.test', 'A', {rd: false}))
    expect(tcp.tc).to.equal(false)
    expect(tcp.answers).to.have.length(80)
    // A 1232-byte limit still fits a mid-sized answer whole.
    const mid = await ask('router.disk.test', 'ANY')
    expect(mid.tc).to.equal(false)
  })

  it('answers several queries on one TCP connection, sent in pieces and back to back', async () => {
    const conversation = await TcpConversation.open('127.0.0.1', server.port)
    try {
      const stream = Buffer.concat([
        frame(encodeMessage(makeQuery(1, 'router.disk.test', 'A'))),
        frame(encodeMessage(makeQuery(2, 'nope.disk.test', 'A'))),
        frame(encodeMessage(makeQuery(3, 'node1.disk.test', 'A'))),
      ])
      conversation.write(stream.subarray(0, 1))
      await new Promise((resolve) => setTimeout(resolve, 30))
      conversation.write(stream.subarray(1, 40))
      await new Promise((resolve) => setTimeout(resolve, 30))
      conversation.write(stream.subarray(40))
      const replies = await conversation.waitReplies(3)
      expect(replies.map((reply) => [reply.id, reply.rcode])).to.deep.equal([
        [1, Rcode.NOERROR],
        [2, Rcode.NXDOMAIN],
        [3, Rcode.NOERROR],
      ])
    } finally {
      conversation.close()
    }
  })

  it('survives garbage on UDP and TCP: drops it or answers FORMERR, and keeps serving', async () => {
    const port = server.port
    expect(await udpExchange('127.0.0.1', port, Buffer.from('hello'), {timeoutMs: 300})).to.equal(undefined)
    const cut = encodeMessage(makeQuery(0xbeef, 'router.disk.test', 'A')).subarray(0, 20)
    const formerr = await udpAsk('127.0.0.1', port, cut)
    expect(formerr).to.include({id: 0xbeef, rcode: Rcode.FORMERR, qr: true})
    const random = Buffer.alloc(300)
    for (let i = 0; i < random.length; i++) random[i] = (i * 131 + 7) & 0xff
    random.writeUInt16BE(0, 2) // a query header, then nonsense counts and sections
    await udpExchange('127.0.0.1', port, random, {timeoutMs: 300})
    const noQuestion = encodeMessage({...makeQuery(5, 'x', 'A'), questions: []})
    expect((await udpAsk('127.0.0.1', port, noQuestion)).rcode).to.equal(Rcode.FORMERR)

    const garbage = await TcpConversation.open('127.0.0.1', port)
    garbage.write(Buffer.from([0, 3, 1, 2, 3]))
    await garbage.waitReplies(1, 1000)
    expect(garbage.closed).to.equal(true)
    const cutTcp = await TcpConversation.open('127.0.0.1', port)
    cutTcp.write(frame(cut))
    const [tcpFormerr] = await cutTcp.waitReplies(1)
    expect(tcpFormerr.rcode).to.equal(Rcode.FORMERR)
    cutTcp.write(Buffer.from([0xff, 0xff, 0, 0])) // announces 65535 bytes, sends 2, then hangs up
    cutTcp.close()

    const reply = await ask('router.disk.test')
    expect(reply.answers[0].data).to.equal('10.0.0.1')
    expect(server.stats.formerr).to.be.greaterThan(0)
  })
})
