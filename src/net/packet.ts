/**
 * The reliable-UDP wire format of DESIGN.md §8, exactly:
 *   byte 0     0 = data, 1 = acknowledgement
 *   bytes 1-4  packet id, unsigned 32-bit big-endian
 *   then       the payload (data packets only; may be empty)
 */

export const DATA = 0
export const ACK = 1
/** Type byte plus id. */
export const HEADER_BYTES = 5
/** The largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP header bytes). */
export const MAX_DATAGRAM_BYTES = 65_507
/** The largest message one datagram can carry; nothing is ever fragmented. */
export const MAX_PAYLOAD_BYTES = MAX_DATAGRAM_BYTES - HEADER_BYTES

export type Packet = {type: 'data'; id: number; payload: Buffer} | {type: 'ack'; id: number}

export function encodeData(id: number, payload: Uint8Array): Buffer {
  const packet = Buffer.allocUnsafe(HEADER_BYTES + payload.length)
  packet[0] = DATA
  packet.writeUInt32BE(id >>> 0, 1)
  packet.set(payload, HEADER_BYTES)
  return packet
}

export function encodeAck(id: number): Buffer {
  const packet = Buffer.allocUnsafe(HEADER_BYTES)
  packet[0] = ACK
  packet.writeUInt32BE(id >>> 0, 1)
  return packet
}

/**
 * Parses one datagram; undefined when it is malformed: shorter than the
 * header, an unknown type byte, or an acknowledgement with trailing bytes.
 * The payload is a view into `datagram`, not a copy.
 */
export function decodePacket(datagram: Buffer): Packet | undefined {
  if (datagram.length < HEADER_BYTES) return undefined
  const id = datagram.readUInt32BE(1)
  if (datagram[0] === DATA) return {type: 'data', id, payload: datagram.subarray(HEADER_BYTES)}
  if (datagram[0] === ACK && datagram.length === HEADER_BYTES) return {type: 'ack', id}
  return undefined
}
