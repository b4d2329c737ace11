import {expect} from 'chai'

import {decodePacket, encodeAck, encodeData, MAX_PAYLOAD_BYTES} from '../../src/net/packet.js'
import {messageLine} from '../../src/net/text.js'

describe('reliable-UDP wire format', () => {
  it('encodes a data packet as [0][id uint32 BE][payload]', () => {
    const packet = encodeData(0x01_02_03_04, Buffer.from('hi'))
    expect([...packet]).to.deep.equal([0, 1, 2, 3, 4, 0x68, 0x69])
  })

  it('encodes an empty data packet as five bytes and the largest id without sign trouble', () => {
    expect([...encodeData(0xff_ff_ff_ff, new Uint8Array())]).to.deep.equal([0, 255, 255, 255, 255])
  })

  it('encodes an acknowledgement as exactly [1][id uint32 BE]', () => {
    expect([...encodeAck(0xde_ad_be_ef)]).to.deep.equal([1, 0xde, 0xad, 0xbe, 0xef])
  })

  it('decodes both kinds and rejects short, unknown-type and padded-ack datagrams', () => {
    expect(decodePacket(Buffer.from([0, 0, 0, 0, 7, 0x41]))).to.deep.equal({type: 'data', id: 7, payload: Buffer.from('A')})
    expect(decodePacket(Buffer.from([1, 0, 0, 1, 0]))).to.deep.equal({type: 'ack', id: 256})
    expect(decodePacket(Buffer.from([0, 0, 0, 0]))).to.equal(undefined)
    expect(decodePacket(Buffer.from([2, 0, 0, 0, 1]))).to.equal(undefined)
    expect(decodePacket(Buffer.from([1, 0, 0, 0, 1, 9]))).to.equal(undefined)
  })

  it('allows payloads up to one IPv4 datagram minus the header', () => {
    expect(MAX_PAYLOAD_BYTES).to.equal(65_507 - 5)
  })
})

describe('net listen output lines', () => {
  it('prints UTF-8 as is and anything else as base64: with padding', () => {
    expect(messageLine(Buffer.from('héllo'))).to.equal('héllo')
    expect(messageLine(Buffer.from([0xff, 0xfe]))).to.equal('base64://4=')
    expect(messageLine(Buffer.from('a\nb'))).to.equal('base64:YQpi')
    expect(messageLine(new Uint8Array())).to.equal('')
  })
})
