import {expect} from 'chai'
import packet from 'dns-packet'

import {parseMasterFile, ZoneParseError} from '../../src/dns/master-file.js'
import {CLASS_ANY, CLASS_NONE, decodeMessage, encodeMessage, FrameReader, frame, makeQuery, WireError} from '../../src/dns/wire.js'
import {encodeUpdate} from './helpers.js'

describe('dns wire format', () => {
  it('decodes UPDATE deletes with RDLENGTH 0, which dns-packet itself misreads', () => {
    const bytes = encodeUpdate(7, 'disk.test', [
      {name: 'a.disk.test', type: 'A', klass: 'ANY', ttl: 0},
      {name: 'b.disk.test', type: 'ANY', klass: 'ANY', ttl: 0},
      {name: 'c.disk.test', type: 'A', klass: 'NONE', ttl: 0, data: '10.0.0.3'},
      {name: 'd.disk.test', type: 'TXT', klass: 'IN', ttl: 60, data: ['hi']},
    ])
    // dns-packet reads four bytes of "address" from the empty RDATA and loses its place.
    let upstream: unknown
    try {
      upstream = packet.decode(bytes).authorities?.map((rr) => rr.name)
    } catch (error) {
      upstream = error
    }
    expect(upstream).to.not.deep.equal(['a.disk.test', 'b.disk.test', 'c.disk.test', 'd.disk.test'])

    const message = decodeMessage(bytes)
    expect(message.opcode).to.equal(5)
    expect(message.questions).to.deep.equal([{name: 'disk.test', type: 'SOA', klass: 1}])
    expect(message.authorities.map((rr) => [rr.name, rr.type, rr.klass, rr.data])).to.deep.equal([
      ['a.disk.test', 'A', CLASS_ANY, null],
      ['b.disk.test', 'ANY', CLASS_ANY, null],
      ['c.disk.test', 'A', CLASS_NONE, '10.0.0.3'],
      ['d.disk.test', 'TXT', 1, ['hi']],
    ])
  })

  it('rejects truncated and inconsistent packets with a WireError carrying the id', () => {
    const good = encodeMessage(makeQuery(0x1234, 'router.disk.test', 'A'))
    expect(() => decodeMessage(good.subarray(0, 5))).to.throw(WireError)
    try {
      decodeMessage(good.subarray(0, good.length - 3))
      expect.fail('decoded a cut packet')
    } catch (error) {
      expect(error).to.be.instanceOf(WireError)
      expect((error as WireError).id).to.equal(0x1234)
    }
    const badA = Buffer.from(good)
    badA.writeUInt16BE(1, 6) // claims an answer record that is not there
    expect(() => decodeMessage(badA)).to.throw(WireError)
  })

  it('round-trips a query with EDNS and truncates an oversized reply to header, question and OPT with TC', () => {
    const query = makeQuery(9, 'big.disk.test', 'A')
    expect(decodeMessage(encodeMessage(query)).edns?.udpPayloadSize).to.equal(1232)
    const answers = Array.from({length: 50}, (_, i) => ({name: 'big.disk.test', type: 'A', klass: 1, ttl: 60, data: `10.0.0.${i}`}))
    const reply = {...query, qr: true, answers}
    const cut = decodeMessage(encodeMessage(reply, 512))
    expect(cut.tc).to.equal(true)
    expect(cut.answers).to.have.length(0)
    expect(cut.questions[0].name).to.equal('big.disk.test')
    expect(cut.edns).to.not.equal(undefined)
    expect(decodeMessage(encodeMessage(reply)).answers).to.have.length(50)
  })

  it('reassembles TCP frames split anywhere and several in one chunk', () => {
    const a = frame(encodeMessage(makeQuery(1, 'a.test', 'A')))
    const b = frame(encodeMessage(makeQuery(2, 'b.test', 'A')))
    const stream = Buffer.concat([a, b])
    const reader = new FrameReader()
    const got = [...reader.push(stream.subarray(0, 1)), ...reader.push(stream.subarray(1, a.length + 3)), ...reader.push(stream.subarray(a.length + 3))]
    expect(got.map((bytes) => decodeMessage(bytes).id)).to.deep.equal([1, 2])
    expect(reader.buffered).to.equal(0)
  })
})

describe('dns master files', () => {
  it('reads $ORIGIN, $TTL, @, relative names, blank owners, parentheses, units, quotes and comments', () => {
    const records = parseMasterFile(
      `$ORIGIN example.test.
$TTL 2h
@   IN SOA ns hostmaster ( 5 ; serial
        1h 10m 1w 30 )
    NS  ns.example.test.
ns  A   192.0.2.1
    AAAA 2001:db8::1
web 60 IN CNAME ns
txt IN 90 TXT "a \\"quoted\\" word" plain "semi;colon"
_s._tcp SRV 1 2 3 web
$ORIGIN sub.example.test.
x   A   192.0.2.9
`,
      {file: 'example.zone'},
    )
    const byKey = Object.fromEntries(records.map((rr) => [`${rr.name} ${rr.type}`, rr]))
    expect(byKey['example.test SOA'].data).to.deep.equal({
      mname: 'ns.example.test', rname: 'hostmaster.example.test', serial: 5, refresh: 3600, retry: 600, expire: 604800, minimum: 30,
    })
    expect(byKey['example.test SOA'].ttl).to.equal(7200)
    expect(byKey['example.test NS'].data).to.equal('ns.example.test')
    expect(byKey['ns.example.test AAAA'].data).to.equal('2001:db8::1')
    expect(byKey['web.example.test CNAME']).to.include({ttl: 60, data: 'ns.example.test'})
    expect(byKey['txt.example.test TXT']).to.deep.include({ttl: 90, data: ['a "quoted" word', 'plain', 'semi;colon']})
    expect(byKey['_s._tcp.example.test SRV'].data).to.deep.equal({priority: 1, weight: 2, port: 3, target: 'web.example.test'})
    expect(byKey['x.sub.example.test A'].data).to.equal('192.0.2.9')
  })

  it('reports the file and line of a bad record', () => {
    expect(() => parseMasterFile('$TTL 60\n@ SOA a b 1 2 3 4 5\nbad A 300.1.1.1\n', {origin: 'z.test', file: 'z.zone'}))
      .to.throw(ZoneParseError, 'z.zone:3')
  })
})
