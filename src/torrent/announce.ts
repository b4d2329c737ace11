/**
 * The tracker client: HTTP announce (BEP 3, compact replies of BEP 23 and
 * dictionary peer lists) and the UDP tracker protocol (BEP 15), plus the
 * pool look-ups of our own tracker (`GET /torrents?name=`).
 */
import {randomBytes} from 'node:crypto'
import dgram from 'node:dgram'
import http from 'node:http'
import https from 'node:https'

import {TemporaryError, UsageError} from '../base/index.js'
import {type BValue, decode, isDict} from './bencode.js'

export type AnnounceEvent = 'started' | 'completed' | 'stopped' | undefined

export interface AnnounceRequest {
  infoHash: Buffer
  peerId: Buffer
  port: number
  uploaded: number
  downloaded: number
  left: number
  event?: AnnounceEvent
  /** Our address, when it is not the one the tracker sees (each test peer has its own 127.0.0.N). */
  ip?: string
  numwant?: number
  /** Bind the request to this local address (so the tracker sees our 127.0.0.N). */
  localAddress?: string
  timeoutMs?: number
}

export interface PeerAddress {
  host: string
  port: number
  peerId?: Buffer
}

export interface AnnounceReply {
  interval: number
  complete?: number
  incomplete?: number
  peers: PeerAddress[]
  warning?: string
}

/** Compact peers (BEP 23): 6 bytes each, IPv4 then port. */
export function parseCompactPeers(buf: Buffer): PeerAddress[] {
  const out: PeerAddress[] = []
  for (let i = 0; i + 6 <= buf.length; i += 6) {
    out.push({host: `${buf[i]}.${buf[i + 1]}.${buf[i + 2]}.${buf[i + 3]}`, port: buf.readUInt16BE(i + 4)})
  }
  return out
}

/** Parses an HTTP tracker's bencoded reply; a `failure reason` is a TemporaryError with its text. */
export function parseAnnounceReply(body: Buffer): AnnounceReply {
  let value: BValue
  try {
    value = decode(body)
  } catch (error) {
    throw new TemporaryError(`tracker reply is not bencoded: ${(error as Error).message}`)
  }
  if (!isDict(value)) throw new TemporaryError('tracker reply is not a dictionary')
  const failure = value['failure reason']
  if (Buffer.isBuffer(failure)) throw new TemporaryError(`tracker refused: ${failure.toString('utf8')}`)
  const interval = typeof value.interval === 'number' && value.interval > 0 ? value.interval : 1800
  let peers: PeerAddress[] = []
  const raw = value.peers
  if (Buffer.isBuffer(raw)) peers = parseCompactPeers(raw)
  else if (Array.isArray(raw)) {
    for (const item of raw) {
      if (!isDict(item) || !Buffer.isBuffer(item.ip) || typeof item.port !== 'number') continue
      peers.push({host: item.ip.toString('utf8'), port: item.port, peerId: Buffer.isBuffer(item['peer id']) ? item['peer id'] : undefined})
    }
  }
  const warning = value['warning message']
  return {
    interval,
    complete: typeof value.complete === 'number' ? value.complete : undefined,
    incomplete: typeof value.incomplete === 'number' ? value.incomplete : undefined,
    peers: peers.filter((p) => p.port > 0 && p.port < 65536),
    warning: Buffer.isBuffer(warning) ? warning.toString('utf8') : undefined,
  }
}

/** Percent-encodes raw bytes for a query string (info_hash, peer_id). */
export function escapeBytes(buf: Buffer): string {
  let out = ''
  for (const byte of buf) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9.\-_~]/.test(c) ? c : '%' + byte.toString(16).padStart(2, '0')
  }
  return out
}

export function httpGet(url: string, options: {timeoutMs?: number; localAddress?: string; method?: string; body?: Buffer} = {}): Promise<{status: number; body: Buffer}> {
  return new Promise((resolve, reject) => {
    const parsed = new URL(url)
    const get = parsed.protocol === 'https:' ? https.request : http.request
    const request = get(
      parsed,
      {method: options.method ?? 'GET', localAddress: options.localAddress, timeout: options.timeoutMs ?? 10_000, headers: options.body ? {'content-type': 'application/x-bittorrent', 'content-length': options.body.length} : {}},
      (response) => {
        const chunks: Buffer[] = []
        let size = 0
        response.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > 16 * 1024 * 1024) request.destroy(new Error('reply larger than 16 MiB'))
          else chunks.push(chunk)
        })
        response.on('end', () => resolve({status: response.statusCode ?? 0, body: Buffer.concat(chunks)}))
        response.on('error', reject)
      },
    )
    request.on('timeout', () => request.destroy(new Error('timed out')))
    request.on('error', (error) => reject(new TemporaryError(`${parsed.host}: ${error.message}`, {cause: error})))
    request.end(options.body)
  })
}

async function announceHttp(url: string, req: AnnounceRequest): Promise<AnnounceReply> {
  const params = [
    `info_hash=${escapeBytes(req.infoHash)}`,
    `peer_id=${escapeBytes(req.peerId)}`,
    `port=${req.port}`,
    `uploaded=${Math.floor(req.uploaded)}`,
    `downloaded=${Math.floor(req.downloaded)}`,
    `left=${Math.floor(req.left)}`,
    'compact=1',
    `numwant=${req.numwant ?? 50}`,
  ]
  if (req.event) params.push(`event=${req.event}`)
  if (req.ip) params.push(`ip=${encodeURIComponent(req.ip)}`)
  const full = url + (url.includes('?') ? '&' : '?') + params.join('&')
  const {status, body} = await httpGet(full, {timeoutMs: req.timeoutMs, localAddress: req.localAddress})
  if (status !== 200) throw new TemporaryError(`tracker ${url} answered HTTP ${status}`)
  return parseAnnounceReply(body)
}

const UDP_MAGIC = 0x41727101980n
const UDP_EVENTS: Record<string, number> = {completed: 1, started: 2, stopped: 3}

/** One BEP 15 exchange: connect, then announce; each step retried once on a short timeout. */
async function announceUdp(url: string, req: AnnounceRequest): Promise<AnnounceReply> {
  const parsed = new URL(url)
  const host = parsed.hostname
  const port = Number(parsed.port)
  if (!port) throw new UsageError(`tracker ${url} has no port`)
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind({address: req.localAddress ?? undefined, port: 0}, () => resolve())
  })
  const stepMs = Math.max(500, Math.floor((req.timeoutMs ?? 10_000) / 4))
  const exchange = async (packet: Buffer, action: number, transaction: number): Promise<Buffer> => {
    for (let attempt = 0; attempt < 2; attempt++) {
      const reply = await new Promise<Buffer | null>((resolve) => {
        const timer = setTimeout(() => {
          socket.off('message', onMessage)
          resolve(null)
        }, stepMs * (attempt + 1))
        const onMessage = (msg: Buffer): void => {
          if (msg.length < 8 || msg.readUInt32BE(4) !== transaction) return
          clearTimeout(timer)
          socket.off('message', onMessage)
          resolve(msg)
        }
        socket.on('message', onMessage)
        socket.send(packet, port, host)
      })
      if (!reply) continue
      const got = reply.readUInt32BE(0)
      if (got === 3) throw new TemporaryError(`tracker refused: ${reply.subarray(8).toString('utf8')}`)
      if (got !== action) throw new TemporaryError(`tracker ${url} answered action ${got}, expected ${action}`)
      return reply
    }
    throw new TemporaryError(`tracker ${url} did not answer`)
  }
  try {
    let transaction = randomBytes(4).readUInt32BE(0)
    const connect = Buffer.alloc(16)
    connect.writeBigUInt64BE(UDP_MAGIC, 0)
    connect.writeUInt32BE(0, 8)
    connect.writeUInt32BE(transaction, 12)
    const connected = await exchange(connect, 0, transaction)
    if (connected.length < 16) throw new TemporaryError(`tracker ${url} sent a short connect reply`)
    const connectionId = connected.subarray(8, 16)
    transaction = randomBytes(4).readUInt32BE(0)
    const announce = Buffer.alloc(98)
    connectionId.copy(announce, 0)
    announce.writeUInt32BE(1, 8)
    announce.writeUInt32BE(transaction, 12)
    req.infoHash.copy(announce, 16)
    req.peerId.copy(announce, 36)
    announce.writeBigUInt64BE(BigInt(Math.floor(req.downloaded)), 56)
    announce.writeBigUInt64BE(BigInt(Math.floor(req.left)), 64)
    announce.writeBigUInt64BE(BigInt(Math.floor(req.uploaded)), 72)
    announce.writeUInt32BE(UDP_EVENTS[req.event ?? ''] ?? 0, 80)
    const ip = req.ip && /^\d+\.\d+\.\d+\.\d+$/.test(req.ip) ? req.ip.split('.').map(Number) : [0, 0, 0, 0]
    Buffer.from(ip).copy(announce, 84)
    announce.writeUInt32BE(randomBytes(4).readUInt32BE(0), 88)
    announce.writeInt32BE(req.numwant ?? 50, 92)
    announce.writeUInt16BE(req.port, 96)
    const reply = await exchange(announce, 1, transaction)
    if (reply.length < 20) throw new TemporaryError(`tracker ${url} sent a short announce reply`)
    return {
      interval: reply.readUInt32BE(8) || 1800,
      incomplete: reply.readUInt32BE(12),
      complete: reply.readUInt32BE(16),
      peers: parseCompactPeers(reply.subarray(20)).filter((p) => p.port > 0),
    }
  } finally {
    socket.close()
  }
}

/** Announces to one tracker URL (http, https or udp). */
export function announce(url: string, req: AnnounceRequest): Promise<AnnounceReply> {
  if (url.startsWith('udp://')) return announceUdp(url, req)
  if (url.startsWith('http://') || url.startsWith('https://')) return announceHttp(url, req)
  return Promise.reject(new UsageError(`unsupported tracker URL: ${url}`))
}

/** The base URL of our tracker's pool, from its announce URL (`http://H:P/announce` → `http://H:P`). */
export function trackerBase(url: string): string {
  const parsed = new URL(url)
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`--tracker must be an http URL for pool look-ups: ${url}`)
  return parsed.origin
}
