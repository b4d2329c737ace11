/**
 * SNTP (RFC 4330): a server that answers mode-3 requests with its clock
 * (shifted by a configured offset, for tests), and a client that measures
 * offset and delay by the four timestamps:
 *   offset = ((T2 − T1) + (T3 − T4)) / 2,   delay = (T4 − T1) − (T3 − T2).
 * The packet codec is pure; only SntpServer and sntpQuery touch sockets.
 */
import dgram from 'node:dgram'
import {isIPv6} from 'node:net'

/** Seconds from 1900-01-01 (NTP era 0) to 1970-01-01. */
export const NTP_DELTA = 2_208_988_800
export const PACKET_BYTES = 48

export function writeTimestamp(buffer: Buffer, offset: number, ms: number): void {
  const seconds = Math.floor(ms / 1000)
  const fraction = Math.floor(((ms - seconds * 1000) / 1000) * 0x1_0000_0000)
  buffer.writeUInt32BE((seconds + NTP_DELTA) >>> 0, offset)
  buffer.writeUInt32BE(Math.min(fraction, 0xffff_ffff) >>> 0, offset + 4)
}

export function readTimestamp(buffer: Buffer, offset: number): number {
  const seconds = buffer.readUInt32BE(offset) - NTP_DELTA
  return seconds * 1000 + (buffer.readUInt32BE(offset + 4) / 0x1_0000_0000) * 1000
}

/** The reply to a request, or null when the datagram is not an SNTP client request (garbage is ignored). */
export function answer(request: Buffer, receivedMs: number, nowMs: () => number): Buffer | null {
  if (request.length < PACKET_BYTES) return null
  const version = (request[0] >> 3) & 0x7
  const mode = request[0] & 0x7
  if (mode !== 3 || version < 1 || version > 4) return null
  const reply = Buffer.alloc(PACKET_BYTES)
  reply[0] = (0 << 6) | (version << 3) | 4 // no leap warning, the client's version, mode 4 (server)
  reply[1] = 1 // stratum 1: this clock is the reference
  reply[2] = request[2] // poll interval, echoed
  reply[3] = 0xec // precision 2^-20 s
  reply.write('LOCL', 12, 'ascii')
  writeTimestamp(reply, 16, receivedMs)
  request.copy(reply, 24, 40, 48) // originate = the client's transmit timestamp, verbatim
  writeTimestamp(reply, 32, receivedMs)
  writeTimestamp(reply, 40, nowMs())
  return reply
}

export interface SntpServerOptions {
  host: string
  port: number
  /** Milliseconds added to this machine's clock in every answer. */
  offsetMs?: number
}

export class SntpServer {
  private readonly socket: dgram.Socket
  private readonly offsetMs: number

  constructor(private readonly options: SntpServerOptions) {
    this.offsetMs = options.offsetMs ?? 0
    this.socket = dgram.createSocket(isIPv6(options.host) ? 'udp6' : 'udp4')
    this.socket.on('message', (message, remote) => {
      const reply = answer(message, this.now(), () => this.now())
      if (reply) this.socket.send(reply, remote.port, remote.address, () => undefined)
    })
    this.socket.on('error', () => undefined)
  }

  now(): number {
    return Date.now() + this.offsetMs
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject)
      this.socket.bind(this.options.port, this.options.host, () => {
        this.socket.off('error', reject)
        resolve()
      })
    })
    return this.socket.address().port
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()))
  }
}

export interface ClockSample {
  offsetMs: number
  delayMs: number
}

/** One SNTP exchange with HOST:PORT; rejects on timeout or an answer that is not ours. */
export function sntpQuery(host: string, port: number, timeoutMs = 1000): Promise<ClockSample> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(isIPv6(host) ? 'udp6' : 'udp4')
    const request = Buffer.alloc(PACKET_BYTES)
    request[0] = (4 << 3) | 3
    let t1 = 0
    const finish = (error: Error | null, sample?: ClockSample): void => {
      clearTimeout(timer)
      socket.close()
      if (error) reject(error)
      else resolve(sample!)
    }
    const timer = setTimeout(() => finish(new Error(`SNTP: no answer from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs)
    socket.on('error', (error) => finish(error))
    socket.on('message', (reply) => {
      const t4 = Date.now()
      if (reply.length < PACKET_BYTES || (reply[0] & 0x7) !== 4 || reply[1] === 0) return
      if (!reply.subarray(24, 32).equals(request.subarray(40, 48))) return // not the answer to our request
      const t2 = readTimestamp(reply, 32)
      const t3 = readTimestamp(reply, 40)
      finish(null, {offsetMs: (t2 - t1 + (t3 - t4)) / 2, delayMs: t4 - t1 - (t3 - t2)})
    })
    t1 = Date.now()
    writeTimestamp(request, 40, t1)
    socket.send(request, port, host, (error) => error && finish(error))
  })
}

/** Several exchanges; the one with the least delay wins, as NTP's clock filter picks. */
export async function measureClock(host: string, port: number, samples = 5, timeoutMs = 1000, signal?: AbortSignal): Promise<ClockSample> {
  let best: ClockSample | undefined
  let lastError: unknown
  for (let i = 0; i < samples && !signal?.aborted; i++) {
    try {
      const sample = await sntpQuery(host, port, timeoutMs)
      if (!best || sample.delayMs < best.delayMs) best = sample
    } catch (error) {
      lastError = error
    }
  }
  if (!best) throw lastError instanceof Error ? lastError : new Error(String(lastError))
  return best
}
