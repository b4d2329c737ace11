import {expect} from 'chai'

import {escapeBytes, parseAnnounceReply, parseCompactPeers} from '../../src/torrent/announce.js'
import {encode} from '../../src/torrent/bencode.js'
import {TemporaryError} from '../../src/base/index.js'

describe('torrent tracker client replies', () => {
  it('reads compact peer lists (BEP 23)', () => {
    const peers = Buffer.from([127, 0, 0, 2, 0x1a, 0xe1, 10, 1, 2, 3, 0, 80, 9])
    expect(parseCompactPeers(peers)).to.deep.equal([
      {host: '127.0.0.2', port: 6881},
      {host: '10.1.2.3', port: 80},
    ])
    const reply = parseAnnounceReply(encode({interval: 30, complete: 2, incomplete: 1, peers: peers.subarray(0, 6)}))
    expect(reply).to.deep.equal({interval: 30, complete: 2, incomplete: 1, peers: [{host: '127.0.0.2', port: 6881}], warning: undefined})
  })

  it('reads dictionary peer lists, with or without peer ids', () => {
    const reply = parseAnnounceReply(
      encode({interval: 10, peers: [{ip: '127.0.0.3', port: 7000, 'peer id': Buffer.alloc(20, 1)}, {ip: '127.0.0.4', port: 7001}, {ip: 'x'}]}),
    )
    expect(reply.peers).to.deep.equal([
      {host: '127.0.0.3', port: 7000, peerId: Buffer.alloc(20, 1)},
      {host: '127.0.0.4', port: 7001, peerId: undefined},
    ])
  })

  it('turns a failure reason and garbage into TemporaryError with the text', () => {
    expect(() => parseAnnounceReply(encode({'failure reason': 'unregistered torrent'}))).to.throw(TemporaryError, 'tracker refused: unregistered torrent')
    expect(() => parseAnnounceReply(Buffer.from('<html>'))).to.throw(TemporaryError, /not bencoded/)
    expect(() => parseAnnounceReply(encode([1, 2]))).to.throw(TemporaryError, /not a dictionary/)
  })

  it('percent-encodes raw info-hash bytes', () => {
    expect(escapeBytes(Buffer.from([0x12, 0x34, 0x41, 0x7e, 0xff, 0x2e]))).to.equal('%124A~%ff.')
  })
})
