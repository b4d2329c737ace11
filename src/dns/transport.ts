/**
 * Asking a DNS server: over UDP (one shared socket, answers matched by id,
 * source and question), over TCP (length-framed, RFC 1035 §4.2.2), and the
 * usual combination: UDP first, TCP again when the answer came back
 * truncated.
 */
import {createSocket, type Socket as UdpSocket} from 'node:dgram'
import {isIPv6, Socket as TcpSocket} from 'node:net'

import {decodeMessage, encodeMessage, FrameReader, frame, type Message} from './wire.js'

export interface Endpoint {
  host: string
  port: number
}

/** A query that got no answer in time. */
export class QueryTimeoutError extends Error {
  constructor(readonly server: Endpoint, readonly transport: 'udp' | 'tcp') {
    super(`no answer from ${formatEndpoint(server)} over ${transport}`)
    this.name = 'QueryTimeoutError'
  }
}

/** Parses `HOST:PORT` or `[V6]:PORT`; a bare host takes `defaultPort`. */
export function parseEndpoint(text: string, defaultPort?: number): Endpoint {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text)
  const plain = /^([^:]+)(?::(\d+))?$/.exec(text)
  const match = bracketed ?? plain
  const port = match?.[2] === undefined ? defaultPort : Number(match[2])
  if (!match || port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`not HOST:PORT: ${text}`)
  }
  return {host: match[1], port}
}

export function formatEndpoint(endpoint: Endpoint): string {
  return isIPv6(endpoint.host) ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`
}

interface Pending {
  server: Endpoint
  query: Message
  resolve: (message: Message) => void
  timer: NodeJS.Timeout
}

/** Sends queries over UDP and TCP; one instance per resolver, closed with it. */
export class DnsClient {
  private udp4?: UdpSocket
  private udp6?: UdpSocket
  private readonly pending = new Map<number, Pending>()
  private readonly tcpSockets = new Set<TcpSocket>()
  private closed = false

  /** Sends `query` over UDP (a fresh id is put in it); resolves with the answer. */
  udp(server: Endpoint, query: Message, timeoutMs: number): Promise<Message> {
    const socket = this.socketFor(server.host)
    const id = this.freeId()
    const sent = {...query, id}
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new QueryTimeoutError(server, 'udp'))
      }, timeoutMs)
      this.pending.set(id, {server, query: sent, resolve, timer})
      socket.send(encodeMessage(sent), server.port, server.host, (error) => {
        if (!error) return
        clearTimeout(timer)
        this.pending.delete(id)
        reject(error)
      })
    })
  }

  /** Sends `query` over a new TCP connection; resolves with the first answer. */
  tcp(server: Endpoint, query: Message, timeoutMs: number): Promise<Message> {
    const sent = {...query, id: this.freeId()}
    return new Promise((resolve, reject) => {
      const socket = new TcpSocket()
      this.tcpSockets.add(socket)
      const reader = new FrameReader()
      const finish = (error: Error | undefined, answer?: Message): void => {
        clearTimeout(timer)
        socket.destroy()
        this.tcpSockets.delete(socket)
        if (error) reject(error)
        else resolve(answer!)
      }
      const timer = setTimeout(() => finish(new QueryTimeoutError(server, 'tcp')), timeoutMs)
      socket.on('error', (error) => finish(error))
      socket.on('close', () => finish(new Error(`${formatEndpoint(server)} closed the TCP connection without an answer`)))
      socket.on('data', (chunk) => {
        for (const bytes of reader.push(chunk)) {
          const answer = tryDecode(bytes)
          if (answer && matches(sent, answer)) return finish(undefined, answer)
        }
      })
      socket.connect(server.port, server.host, () => socket.write(frame(encodeMessage(sent))))
    })
  }

  /** UDP, then TCP if the UDP answer was truncated. */
  async query(server: Endpoint, query: Message, options: {timeoutMs: number; tcp?: boolean}): Promise<{answer: Message; transport: 'udp' | 'tcp'}> {
    if (!options.tcp) {
      const answer = await this.udp(server, query, options.timeoutMs)
      if (!answer.tc) return {answer, transport: 'udp'}
    }
    return {answer: await this.tcp(server, query, options.timeoutMs), transport: 'tcp'}
  }

  close(): void {
    this.closed = true
    for (const pending of this.pending.values()) clearTimeout(pending.timer)
    this.pending.clear()
    for (const socket of this.tcpSockets) socket.destroy()
    this.tcpSockets.clear()
    this.udp4?.close()
    this.udp6?.close()
    this.udp4 = this.udp6 = undefined
  }

  private socketFor(host: string): UdpSocket {
    if (this.closed) throw new Error('the DNS client is closed')
    const v6 = isIPv6(host)
    let socket = v6 ? this.udp6 : this.udp4
    if (!socket) {
      socket = createSocket(v6 ? 'udp6' : 'udp4')
      socket.on('message', (bytes, rinfo) => this.onUdp(bytes, rinfo.address, rinfo.port))
      socket.on('error', () => undefined)
      socket.unref()
      if (v6) this.udp6 = socket
      else this.udp4 = socket
    }
    return socket
  }

  private onUdp(bytes: Buffer, address: string, port: number): void {
    const answer = tryDecode(bytes)
    if (!answer) return
    const pending = this.pending.get(answer.id)
    if (!pending || pending.server.port !== port || !sameAddress(pending.server.host, address)) return
    if (!matches(pending.query, answer)) return
    clearTimeout(pending.timer)
    this.pending.delete(answer.id)
    pending.resolve(answer)
  }

  private freeId(): number {
    for (;;) {
      const id = Math.floor(Math.random() * 0x10000)
      if (!this.pending.has(id)) return id
    }
  }
}

function tryDecode(bytes: Buffer): Message | undefined {
  try {
    return decodeMessage(bytes)
  } catch {
    return undefined
  }
}

/** An answer belongs to a query: same id, QR set, same question (FORMERR answers may omit it). */
function matches(query: Message, answer: Message): boolean {
  if (answer.id !== query.id || !answer.qr) return false
  if (answer.questions.length === 0) return answer.rcode !== 0
  const [q] = query.questions
  const [a] = answer.questions
  return a.name === q.name && a.type === q.type && a.klass === q.klass
}

function sameAddress(expected: string, actual: string): boolean {
  return expected === actual || `::ffff:${expected}` === actual || (expected === 'localhost' && (actual === '127.0.0.1' || actual === '::1'))
}

/** One query, as `dns resolve` makes it: UDP tried `tries` times, then TCP if truncated; or TCP only. */
export async function queryOnce(
  server: Endpoint,
  query: Message,
  options: {timeoutMs: number; tcp?: boolean; tries?: number},
): Promise<{answer: Message; transport: 'udp' | 'tcp'}> {
  const client = new DnsClient()
  try {
    const tries = options.tcp ? 1 : Math.max(1, options.tries ?? 2)
    for (let attempt = 1; ; attempt++) {
      try {
        return await client.query(server, query, options)
      } catch (error) {
        if (!(error instanceof QueryTimeoutError && error.transport === 'udp') || attempt >= tries) throw error
      }
    }
  } finally {
    client.close()
  }
}
