/**
 * The UDP tracker protocol (BEP 15) as pure functions over Buffers: connect,
 * announce, scrape and error. Connection ids are stateless: 4 bytes of issue
 * time (seconds) and 4 bytes of an HMAC over that time and the client's
 * address, so a flood of connects costs no memory and an id expires by
 * itself (BEP 15: trackers accept an id up to two minutes after sending it).
 */
import {createHmac, randomBytes} from 'node:crypto'
import {isIPv4} from 'node:net'

import type {AnnounceEvent, AnnounceReply, AnnounceRequest, SwarmCounts} from './swarms.js'

export const PROTOCOL_ID = 0x41727101980n
export const Action = {CONNECT: 0, ANNOUNCE: 1, SCRAPE: 2, ERROR: 3} as const
const EVENTS: AnnounceEvent[] = ['none', 'completed', 'started', 'stopped']
/** BEP 15: at most about 74 info-hashes in one scrape. */
export const MAX_SCRAPE = 74

export class ConnectionIds {
  private readonly secret: Buffer

  constructor(
    private readonly ttlMs = 120_000,
    secret?: Buffer,
  ) {
    this.secret = secret ?? randomBytes(32)
  }

  issue(address: string, port: number, now: number): Buffer {
    const id = Buffer.alloc(8)
    id.writeUInt32BE(Math.floor(now / 1000) >>> 0, 0)
    this.mac(id.subarray(0, 4), address, port).copy(id, 4)
    return id
  }

  valid(id: Buffer, address: string, port: number, now: number): boolean {
    if (id.length !== 8 || !this.mac(id.subarray(0, 4), address, port).equals(id.subarray(4))) return false
    const issued = id.readUInt32BE(0) * 1000
    return issued <= now + 1000 && now - issued < this.ttlMs
  }

  private mac(time: Buffer, address: string, port: number): Buffer {
    return createHmac('sha256', this.secret).update(time).update(`${address}/${port}`).digest().subarray(0, 4)
  }
}

export type UdpRequest =
  | {action: typeof Action.CONNECT; transactionId: number}
  | {action: typeof Action.ANNOUNCE; transactionId: number; connectionId: Buffer; announce: Omit<AnnounceRequest, 'ip'>; ip: number}
  | {action: typeof Action.SCRAPE; transactionId: number; connectionId: Buffer; infoHashes: Buffer[]}

/** A datagram that cannot be answered at all (too short or not ours): dropped silently. */
export class UdpIgnore extends Error {}
/** A datagram answered with an error packet. */
export class UdpRequestError extends Error {
  constructor(
    message: string,
    readonly transactionId: number,
  ) {
    super(message)
  }
}

export function parseUdpRequest(msg: Buffer): UdpRequest {
  if (msg.length < 16) throw new UdpIgnore('shorter than 16 bytes')
  const action = msg.readUInt32BE(8)
  const transactionId = msg.readUInt32BE(12)
  if (action === Action.CONNECT) {
    if (msg.readBigUInt64BE(0) !== PROTOCOL_ID) throw new UdpIgnore('connect without the protocol id')
    return {action, transactionId}
  }
  const connectionId = Buffer.from(msg.subarray(0, 8))
  if (action === Action.ANNOUNCE) {
    if (msg.length < 98) throw new UdpRequestError('announce shorter than 98 bytes', transactionId)
    const event = EVENTS[msg.readUInt32BE(80)]
    if (event === undefined) throw new UdpRequestError('invalid event', transactionId)
    const port = msg.readUInt16BE(96)
    if (port === 0) throw new UdpRequestError('invalid port 0', transactionId)
    const left = msg.readBigInt64BE(64)
    return {
      action,
      transactionId,
      connectionId,
      announce: {
        infoHash: Buffer.from(msg.subarray(16, 36)),
        peerId: Buffer.from(msg.subarray(36, 56)),
        left: left > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Math.max(0, Number(left)),
        event,
        numWant: msg.readInt32BE(92),
        port,
      },
      ip: msg.readUInt32BE(84),
    }
  }
  if (action === Action.SCRAPE) {
    const count = Math.floor((msg.length - 16) / 20)
    if (count === 0 || (msg.length - 16) % 20 !== 0) throw new UdpRequestError('scrape needs whole 20-byte info-hashes', transactionId)
    if (count > MAX_SCRAPE) throw new UdpRequestError(`at most ${MAX_SCRAPE} info-hashes per scrape`, transactionId)
    const infoHashes: Buffer[] = []
    for (let i = 0; i < count; i++) infoHashes.push(Buffer.from(msg.subarray(16 + i * 20, 36 + i * 20)))
    return {action, transactionId, connectionId, infoHashes}
  }
  throw new UdpRequestError(`unknown action ${action}`, transactionId)
}

function header(action: number, transactionId: number, size: number): Buffer {
  const out = Buffer.alloc(size)
  out.writeUInt32BE(action, 0)
  out.writeUInt32BE(transactionId, 4)
  return out
}

export function encodeConnect(transactionId: number, connectionId: Buffer): Buffer {
  const out = header(Action.CONNECT, transactionId, 16)
  connectionId.copy(out, 8)
  return out
}

/** The announce reply with IPv4 peers only (a 6-byte entry cannot hold others). */
export function encodeUdpAnnounce(transactionId: number, interval: number, reply: AnnounceReply): Buffer {
  const peers = reply.peers.filter((peer) => isIPv4(peer.ip))
  const out = header(Action.ANNOUNCE, transactionId, 20 + peers.length * 6)
  out.writeUInt32BE(interval, 8)
  out.writeUInt32BE(reply.incomplete, 12)
  out.writeUInt32BE(reply.complete, 16)
  peers.forEach((peer, i) => {
    const at = 20 + i * 6
    peer.ip.split('.').forEach((part, j) => (out[at + j] = Number(part)))
    out.writeUInt16BE(peer.port, at + 4)
  })
  return out
}

export function encodeUdpScrape(transactionId: number, counts: SwarmCounts[]): Buffer {
  const out = header(Action.SCRAPE, transactionId, 8 + counts.length * 12)
  counts.forEach((count, i) => {
    out.writeUInt32BE(count.complete, 8 + i * 12)
    out.writeUInt32BE(count.downloaded, 12 + i * 12)
    out.writeUInt32BE(count.incomplete, 16 + i * 12)
  })
  return out
}

export function encodeUdpError(transactionId: number, message: string): Buffer {
  return Buffer.concat([header(Action.ERROR, transactionId, 8), Buffer.from(message, 'utf8')])
}

/** A 32-bit address from an announce's IP field, dotted. */
export function dotted(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff].join('.')
}
