import {expect} from 'chai'

import {bdecode} from '../../src/torrent/index.js'
import {encodeAnnounceReply, parseAnnounce, parseUdpRequest, TrackerRequestError, UdpIgnore, UdpRequestError} from '../../src/torrent/tracker/index.js'
import {prngStream} from './helpers.js'
import {query} from './tracker-client.js'

describe('torrent tracker codecs', () => {
  it('puts IPv6 peers in peers6 (BEP 7) and IPv4 peers in peers (BEP 23)', () => {
    const peer = (ip: string, port: number) => ({peerId: Buffer.alloc(20, 1), ip, port, left: 0, lastSeen: 0})
    const reply = encodeAnnounceReply({complete: 1, incomplete: 2, downloaded: 0, peers: [peer('127.0.0.5', 6881), peer('2001:db8::1:2', 443), peer('::1', 80)]}, 30, true, false)
    const body = bdecode(reply) as Record<string, Buffer>
    expect(body.peers.toString('hex')).to.equal('7f0000051ae1')
    expect(body.peers6.toString('hex')).to.equal('20010db8000000000000000000010002' + '01bb' + '00000000000000000000000000000001' + '0050')
  })

  it('reads an IPv4-mapped connecting address as plain IPv4', () => {
    const {request} = parseAnnounce(query({info_hash: Buffer.alloc(20), peer_id: Buffer.alloc(20), port: 1}), '::ffff:127.0.0.9')
    expect(request.ip).to.equal('127.0.0.9')
  })

  it('never throws anything but its typed errors on 5,000 seeded random HTTP queries and UDP datagrams', () => {
    const random = prngStream('tracker-codec-fuzz')
    const valid = query({info_hash: Buffer.alloc(20, 3), peer_id: Buffer.alloc(20, 4), port: 6881, left: 0, event: 'started'})
    let parsedHttp = 0
    let parsedUdp = 0
    for (let round = 0; round < 5000; round++) {
      const noise = random(4)
      const text = Buffer.from(valid)
      for (let e = 0; e < 1 + (noise[0] % 3); e++) text[noise.readUInt16BE(1) % text.length] = 0x20 + (random(1)[0] % 0x5f)
      try {
        parseAnnounce(text.toString('latin1'), '127.0.0.1')
        parsedHttp++
      } catch (error) {
        if (!(error instanceof TrackerRequestError)) throw error
      }
      const datagram = random(noise[3] % 2 === 0 ? 16 : noise[3] % 120)
      if (datagram.length >= 16) datagram.writeUInt32BE(noise[0] % 4, 8)
      if (datagram.length >= 16 && noise[1] % 4 === 0) datagram.writeBigUInt64BE(0x41727101980n, 0)
      try {
        parseUdpRequest(datagram)
        parsedUdp++
      } catch (error) {
        if (!(error instanceof UdpIgnore) && !(error instanceof UdpRequestError)) throw error
      }
    }
    expect(parsedHttp).to.be.greaterThan(0).and.lessThan(5000)
    expect(parsedUdp).to.be.greaterThan(0).and.lessThan(5000)
  })
})
