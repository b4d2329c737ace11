// Minimal tracker clients for the tracker tests, written from BEP 3, 15, 23
// and 48 (not the peer side's announce.ts): raw HTTP GETs from a chosen
// loopback address, and BEP 15 over a dgram socket.
import {createSocket, type Socket} from 'node:dgram'
import http from 'node:http'

import {bdecode} from '../../src/torrent/index.js'

export interface HttpReply {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

export function request(url: string, options: {method?: string; body?: Buffer; localAddress?: string} = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {method: options.method ?? 'GET', localAddress: options.localAddress, agent: false}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks)}))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

/** Percent-encodes every byte of a Buffer value; strings and numbers as they are. */
export function query(params: Record<string, Buffer | string | number | undefined>): string {
  return Object.entries(params)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => {
      const text = Buffer.isBuffer(value) ? [...value].map((byte) => '%' + byte.toString(16).padStart(2, '0')).join('') : encodeURIComponent(String(value))
      return `${key}=${text}`
    })
    .join('&')
}

export type Dict = Record<string, unknown>

/** GET announce?params from `localAddress`; the decoded reply, which must come with HTTP 200. */
export async function httpAnnounce(announceUrl: string, params: Record<string, Buffer | string | number | undefined>, localAddress?: string): Promise<Dict> {
  const reply = await request(`${announceUrl}?${query(params)}`, {localAddress})
  if (reply.status !== 200) throw new Error(`announce: HTTP ${reply.status}`)
  return bdecode(reply.body) as Dict
}

export function compactPeers(peers: Buffer): string[] {
  const out: string[] = []
  for (let at = 0; at + 6 <= peers.length; at += 6) out.push(`${[...peers.subarray(at, at + 4)].join('.')}:${peers.readUInt16BE(at + 4)}`)
  return out
}

export interface UdpAnnounceReply {
  interval: number
  leechers: number
  seeders: number
  peers: string[]
}

/** A BEP 15 client on its own socket (bound to `host`), one request in flight at a time. */
export class UdpTrackerClient {
  private constructor(
    private readonly socket: Socket,
    private readonly host: string,
    private readonly port: number,
  ) {}

  static async open(trackerHost: string, trackerPort: number, localHost = '127.0.0.1'): Promise<UdpTrackerClient> {
    const socket = createSocket('udp4')
    await new Promise<void>((resolve) => socket.bind(0, localHost, resolve))
    return new UdpTrackerClient(socket, trackerHost, trackerPort)
  }

  get localPort(): number {
    return this.socket.address().port
  }

  close(): void {
    this.socket.close()
  }

  /** Sends raw bytes and waits up to `timeoutMs` for one datagram (undefined when none comes). */
  exchange(packet: Buffer, timeoutMs = 2000): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.off('message', onMessage)
        resolve(undefined)
      }, timeoutMs)
      const onMessage = (msg: Buffer): void => {
        clearTimeout(timer)
        this.socket.off('message', onMessage)
        resolve(msg)
      }
      this.socket.on('message', onMessage)
      this.socket.send(packet, this.port, this.host)
    })
  }

  /** Sends a request with a fresh transaction id; returns [action, body after the 8-byte header]. */
  async call(build: (transactionId: number) => Buffer): Promise<[number, Buffer]> {
    const transactionId = Math.floor(Math.random() * 2 ** 32)
    const reply = await this.exchange(build(transactionId))
    if (!reply) throw new Error('no UDP reply')
    if (reply.readUInt32BE(4) !== transactionId) throw new Error('transaction id mismatch')
    return [reply.readUInt32BE(0), reply.subarray(8)]
  }

  async connect(): Promise<Buffer> {
    const [action, body] = await this.call((tid) => {
      const packet = Buffer.alloc(16)
      packet.writeBigUInt64BE(0x41727101980n, 0)
      packet.writeUInt32BE(0, 8)
      packet.writeUInt32BE(tid, 12)
      return packet
    })
    if (action !== 0) throw new Error(`connect: action ${action} ${body.toString()}`)
    return Buffer.from(body.subarray(0, 8))
  }

  /** Announce; resolves with the reply or rejects with the tracker's error message. */
  async announce(
    connectionId: Buffer,
    a: {infoHash: Buffer; peerId: Buffer; left: number; event: 0 | 1 | 2 | 3; port: number; ip?: string; numWant?: number},
  ): Promise<UdpAnnounceReply> {
    const [action, body] = await this.call((tid) => {
      const packet = Buffer.alloc(98)
      connectionId.copy(packet, 0)
      packet.writeUInt32BE(1, 8)
      packet.writeUInt32BE(tid, 12)
      a.infoHash.copy(packet, 16)
      a.peerId.copy(packet, 36)
      packet.writeBigInt64BE(0n, 56)
      packet.writeBigInt64BE(BigInt(a.left), 64)
      packet.writeBigInt64BE(0n, 72)
      packet.writeUInt32BE(a.event, 80)
      if (a.ip) a.ip.split('.').forEach((part, i) => (packet[84 + i] = Number(part)))
      packet.writeUInt32BE(0x1234, 88)
      packet.writeInt32BE(a.numWant ?? -1, 92)
      packet.writeUInt16BE(a.port, 96)
      return packet
    })
    if (action === 3) throw new Error(body.toString('utf8'))
    if (action !== 1) throw new Error(`announce: action ${action}`)
    return {interval: body.readUInt32BE(0), leechers: body.readUInt32BE(4), seeders: body.readUInt32BE(8), peers: compactPeers(body.subarray(12))}
  }

  async scrape(connectionId: Buffer, infoHashes: Buffer[]): Promise<Array<{seeders: number; completed: number; leechers: number}>> {
    const [action, body] = await this.call((tid) => {
      const head = Buffer.alloc(16)
      connectionId.copy(head, 0)
      head.writeUInt32BE(2, 8)
      head.writeUInt32BE(tid, 12)
      return Buffer.concat([head, ...infoHashes])
    })
    if (action === 3) throw new Error(body.toString('utf8'))
    if (action !== 2) throw new Error(`scrape: action ${action}`)
    return infoHashes.map((_, i) => ({seeders: body.readUInt32BE(i * 12), completed: body.readUInt32BE(i * 12 + 4), leechers: body.readUInt32BE(i * 12 + 8)}))
  }
}
