import {expect} from 'chai'
import {createHash} from 'node:crypto'

import {
  allowedFastSet,
  checkBitfield,
  decodeHandshake,
  decodeMessage,
  encodeHandshake,
  encodeMessage,
  FrameReader,
  type Message,
  pieceHeader,
  WireError,
} from '../../src/torrent/wire.js'
import {decodeMetadataMessage, encodeMetadataMessage, MetadataCollector} from '../../src/torrent/metadata.js'
import {prngStream} from './helpers.js'

const infoHash = Buffer.from('0123456789abcdef0123456789abcdef01234567', 'hex')
const peerId = Buffer.from('-DC0001-abcdefghijkl')

describe('torrent wire codec', () => {
  it('encodes the handshake with the fast (BEP 6) and extension (BEP 10) bits', () => {
    const buf = encodeHandshake(infoHash, peerId)
    expect(buf.length).to.equal(68)
    expect(buf[0]).to.equal(19)
    expect(buf.toString('latin1', 1, 20)).to.equal('BitTorrent protocol')
    expect(buf.subarray(20, 28)).to.deep.equal(Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0x04]))
    const shake = decodeHandshake(buf)!
    expect(shake.infoHash).to.deep.equal(infoHash)
    expect(shake.peerId).to.deep.equal(peerId)
    expect(shake.fast).to.equal(true)
    expect(shake.extended).to.equal(true)
    const plain = decodeHandshake(encodeHandshake(infoHash, peerId, {fast: false, extended: false}))!
    expect([plain.fast, plain.extended]).to.deep.equal([false, false])
  })

  it('rejects what is not a handshake as soon as the first bytes show it', () => {
    expect(() => decodeHandshake(Buffer.from('GET / HTTP/1.1'))).to.throw(WireError)
    expect(() => decodeHandshake(Buffer.from([19, 0x42, 0x69, 0x74, 0x54, 0x6f, 0x72, 0x72, 0x65, 0x6e, 0x74, 0x20, 0x58]))).to.throw(WireError)
    expect(decodeHandshake(encodeHandshake(infoHash, peerId).subarray(0, 40))).to.equal(null)
  })

  const samples: Message[] = [
    {type: 'keep-alive'},
    {type: 'choke'},
    {type: 'unchoke'},
    {type: 'interested'},
    {type: 'not-interested'},
    {type: 'have', index: 70_000},
    {type: 'bitfield', bits: Buffer.from([0xff, 0x80])},
    {type: 'request', index: 3, begin: 16_384, length: 16_384},
    {type: 'piece', index: 3, begin: 16_384, block: Buffer.from('data')},
    {type: 'cancel', index: 3, begin: 0, length: 16_384},
    {type: 'port', port: 6881},
    {type: 'suggest', index: 9},
    {type: 'have-all'},
    {type: 'have-none'},
    {type: 'reject', index: 1, begin: 2, length: 3},
    {type: 'allowed-fast', index: 12},
    {type: 'extended', id: 0, payload: Buffer.from('de')},
  ]

  it('round-trips every message type', () => {
    for (const message of samples) {
      const encoded = encodeMessage(message)
      expect(encoded.readUInt32BE(0)).to.equal(encoded.length - 4)
      expect(decodeMessage(encoded.subarray(4))).to.deep.equal(message)
    }
    const header = pieceHeader(5, 32_768, 4)
    expect(Buffer.concat([header, Buffer.from('abcd')])).to.deep.equal(encodeMessage({type: 'piece', index: 5, begin: 32_768, block: Buffer.from('abcd')}))
  })

  it('rejects messages of the wrong length', () => {
    expect(() => decodeMessage(Buffer.from([4, 0, 0]))).to.throw(WireError, /have/)
    expect(() => decodeMessage(Buffer.from([6, 0, 0, 0, 1]))).to.throw(WireError, /request/)
    expect(() => decodeMessage(Buffer.from([0, 1]))).to.throw(WireError, /choke/)
    expect(() => decodeMessage(Buffer.from([7, 0, 0]))).to.throw(WireError, /piece/)
    expect(() => decodeMessage(Buffer.from([20]))).to.throw(WireError, /extended/)
    expect(decodeMessage(Buffer.from([99, 1, 2]))).to.deep.equal({type: 'unknown', id: 99, payload: Buffer.from([1, 2])})
  })

  it('reassembles a stream cut at every byte boundary', () => {
    const stream = Buffer.concat([encodeHandshake(infoHash, peerId), ...samples.map(encodeMessage)])
    for (const step of [1, 3, 7, 64, stream.length]) {
      const reader = new FrameReader()
      const out: Message[] = []
      let shake
      for (let at = 0; at < stream.length; at += step) {
        reader.push(stream.subarray(at, at + step))
        if (!shake) shake = reader.handshake()
        if (!shake) continue
        for (let message = reader.next(); message; message = reader.next()) out.push(message)
      }
      expect(shake?.infoHash).to.deep.equal(infoHash)
      expect(out).to.deep.equal(samples)
    }
  })

  it('refuses an oversized frame before buffering it', () => {
    const reader = new FrameReader({expectHandshake: false})
    const header = Buffer.alloc(5)
    header.writeUInt32BE(0x7fffffff, 0)
    reader.push(header)
    expect(() => reader.next()).to.throw(WireError, /larger/)
  })

  it('never throws anything but WireError on garbage (seeded fuzz)', () => {
    const random = prngStream('wire-fuzz')
    for (let round = 0; round < 2000; round++) {
      const bytes = random(1 + (random(1)[0] % 200))
      const reader = new FrameReader({expectHandshake: round % 2 === 0})
      reader.push(round % 4 === 0 ? Buffer.concat([encodeHandshake(infoHash, peerId), bytes]) : bytes)
      try {
        if (round % 2 === 0) reader.handshake()
        for (let i = 0; i < 100 && reader.next(); i++);
      } catch (error) {
        expect(error).to.be.instanceOf(WireError)
      }
    }
  })

  it('checks bitfield size and spare bits', () => {
    expect(() => checkBitfield(Buffer.from([0xff, 0xc0]), 10)).to.not.throw()
    expect(() => checkBitfield(Buffer.from([0xff, 0xe0]), 10)).to.throw(WireError, /spare/)
    expect(() => checkBitfield(Buffer.from([0xff]), 10)).to.throw(WireError, /bitfield of 1 bytes/)
  })

  it('computes the BEP 6 allowed-fast set of the specification example', () => {
    // BEP 6: 7 pieces of 1313 for 80.4.4.200 and an info-hash of 20 bytes 0xaa.
    const set = allowedFastSet(7, 1313, '80.4.4.200', Buffer.alloc(20, 0xaa), (data) => createHash('sha1').update(data).digest())
    expect(set).to.deep.equal([1059, 431, 808, 1217, 287, 376, 1188])
  })
})

describe('torrent ut_metadata (BEP 9)', () => {
  it('round-trips request, data and reject messages', () => {
    expect(decodeMetadataMessage(encodeMetadataMessage({type: 'request', piece: 2}))).to.deep.equal({type: 'request', piece: 2})
    expect(decodeMetadataMessage(encodeMetadataMessage({type: 'reject', piece: 1}))).to.deep.equal({type: 'reject', piece: 1})
    const data = Buffer.from('some info bytes')
    expect(decodeMetadataMessage(encodeMetadataMessage({type: 'data', piece: 0, totalSize: 15, data}))).to.deep.equal({type: 'data', piece: 0, totalSize: 15, data})
  })

  it('assembles pieces and checks the info-hash', () => {
    const info = prngStream('meta')(40_000)
    const hash = createHash('sha1').update(info).digest()
    const collector = new MetadataCollector(hash, info.length)
    expect(collector.missing()).to.deep.equal([0, 1, 2])
    expect(collector.add(2, info.subarray(32_768))).to.equal(undefined)
    expect(collector.add(0, info.subarray(0, 100))).to.equal(undefined) // wrong size: ignored
    expect(collector.add(0, info.subarray(0, 16_384))).to.equal(undefined)
    expect(collector.add(1, info.subarray(16_384, 32_768))).to.deep.equal(info)
    const wrong = new MetadataCollector(Buffer.alloc(20), info.length)
    wrong.add(0, info.subarray(0, 16_384))
    wrong.add(1, info.subarray(16_384, 32_768))
    expect(wrong.add(2, info.subarray(32_768))).to.equal('bad')
    expect(wrong.missing()).to.deep.equal([0, 1, 2])
  })
})
