/**
 * Heartbeats, over the reliable-UDP protocol (src/net/reliable-udp.ts).
 *
 * A storage server sends one message per interval to the router's UDP port
 * (the same number as its TCP port): `HB <number> <host:port> <incarnation>`.
 * The address re-announces the server, so a router restarted on an empty
 * membership table learns it again; the incarnation (random per process start)
 * tells the router that a server restarted, even between two checks.
 */
import {ReliableSocket} from '../net/reliable-udp.js'

export interface Heartbeat {
  number: number
  host: string
  port: number
  incarnation: string
}

export function encodeHeartbeat(beat: Heartbeat): Buffer {
  return Buffer.from(`HB ${beat.number} ${beat.host}:${beat.port} ${beat.incarnation}`)
}

/** Parses a heartbeat; null for anything else (ignored by the router). */
export function decodeHeartbeat(data: Buffer): Heartbeat | null {
  const match = /^HB (\d{1,6}) (\S+):(\d{1,5}) (\S{1,64})$/.exec(data.toString('latin1'))
  if (!match) return null
  const port = Number(match[3])
  if (port < 1 || port > 65_535) return null
  return {number: Number(match[1]), host: match[2], port, incarnation: match[4]}
}

export interface HeartbeatSenderOptions {
  router: {host: string; port: number}
  beat: Heartbeat
  intervalMs: number
}

/** Sends heartbeats until stopped; a lost heartbeat is simply the next one's job. */
export class HeartbeatSender {
  private readonly socket = new ReliableSocket({initialRtoMs: 300, minRtoMs: 100})
  private timer: NodeJS.Timeout | null = null
  private readonly payload: Buffer

  constructor(private readonly options: HeartbeatSenderOptions) {
    this.payload = encodeHeartbeat(options.beat)
  }

  async start(): Promise<void> {
    await this.socket.bind(0, this.options.router.host.includes(':') ? '::' : '0.0.0.0')
    this.beat()
    this.timer = setInterval(() => this.beat(), this.options.intervalMs)
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.socket.close()
  }

  private beat(): void {
    const {router, intervalMs} = this.options
    this.socket.sendTo(this.payload, router.port, router.host, {timeoutMs: intervalMs * 2, retries: 2}).catch(() => undefined)
  }
}
