/**
 * The tracker (DESIGN.md §10): HTTP announce, scrape and the torrent pool on
 * a TCP port, the UDP tracker protocol (BEP 15) on the same port number, one
 * peer table behind both. It owns the sockets and timers; the table
 * (swarms.ts) and the codecs (http-codec.ts, udp-codec.ts) do no I/O.
 */
import {createSocket, type Socket as UdpSocket} from 'node:dgram'
import {createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse} from 'node:http'
import {isIPv6} from 'node:net'

import {magnetUri, TorrentFormatError} from '../metainfo.js'
import {
  encodeAnnounceReply,
  encodeFailure,
  encodeScrapeReply,
  parseAnnounce,
  parseScrape,
  plainAddress,
  TrackerRequestError,
} from './http-codec.js'
import {TorrentPool} from './pool.js'
import {Swarms} from './swarms.js'
import {
  Action,
  ConnectionIds,
  dotted,
  encodeConnect,
  encodeUdpAnnounce,
  encodeUdpError,
  encodeUdpScrape,
  parseUdpRequest,
  UdpIgnore,
  UdpRequestError,
} from './udp-codec.js'

export interface TrackerOptions {
  /** Address to listen on (TCP and UDP); default 127.0.0.1. */
  host?: string
  /** Port for both; 0 picks one free for both. Default 0. */
  port?: number
  /** Seconds between a client's announces; a peer silent for twice this is dropped. Default 30. */
  interval?: number
  /** Where the pool and the counters persist; none keeps them in memory. */
  dataDir?: string
  /** How long a UDP connection id stays valid (ms); default 120000 (BEP 15). */
  connectionTtlMs?: number
  /** How often silent peers are looked for (ms); default min(1000, interval × 250). */
  sweepMs?: number
  /** Event log, one line per call. */
  log?: (line: string) => void
  /** Log every announce too. */
  verbose?: boolean
}

const BIND_ATTEMPTS = 20
/** A .torrent larger than this is refused (a 2,000-piece torrent is about 40 KB). */
const MAX_TORRENT_BYTES = 8 * 1024 * 1024

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

export class TrackerServer {
  readonly host: string
  readonly interval: number
  private port = 0
  private http?: HttpServer
  private udp?: UdpSocket
  private sweeper?: NodeJS.Timeout
  private readonly pool: TorrentPool
  private readonly swarms: Swarms
  private readonly ids: ConnectionIds
  private readonly log: (line: string) => void

  constructor(private readonly options: TrackerOptions = {}) {
    this.host = options.host ?? '127.0.0.1'
    this.interval = options.interval ?? 30
    if (!Number.isInteger(this.interval) || this.interval < 1) throw new RangeError('interval must be a whole number of seconds, at least 1')
    this.log = options.log ?? (() => {})
    this.pool = new TorrentPool(options.dataDir, this.log)
    this.swarms = new Swarms(2 * this.interval * 1000, () => void this.pool.saveCompletions(this.swarms.completions()))
    this.ids = new ConnectionIds(options.connectionTtlMs)
  }

  /** `http://HOST:PORT/announce`. */
  get announceUrl(): string {
    return `http://${this.hostForUrl}:${this.port}/announce`
  }

  get udpUrl(): string {
    return `udp://${this.hostForUrl}:${this.port}/announce`
  }

  get boundPort(): number {
    return this.port
  }

  private get hostForUrl(): string {
    return isIPv6(this.host) ? `[${this.host}]` : this.host
  }

  async start(): Promise<void> {
    this.swarms.restore(await this.pool.load())
    await this.bind()
    const sweepMs = this.options.sweepMs ?? Math.min(1000, this.interval * 250)
    this.sweeper = setInterval(() => {
      const dropped = this.swarms.sweep(Date.now())
      if (dropped > 0 && this.options.verbose) this.log(`dropped ${dropped} silent peer(s)`)
    }, sweepMs)
    this.sweeper.unref()
  }

  /** Closes both sockets and the timer, and writes the counters. */
  async stop(): Promise<void> {
    clearInterval(this.sweeper)
    const http = this.http
    const udp = this.udp
    this.http = this.udp = undefined
    await Promise.all([
      http
        ? new Promise<void>((resolve) => {
            http.close(() => resolve())
            http.closeAllConnections()
          })
        : undefined,
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
    ])
    await this.pool.saveCompletions(this.swarms.completions())
  }

  private async bind(): Promise<void> {
    const wanted = this.options.port ?? 0
    for (let attempt = 1; ; attempt++) {
      const http = createServer((request, response) => this.onRequest(request, response))
      const udp = createSocket({type: isIPv6(this.host) ? 'udp6' : 'udp4'})
      try {
        await new Promise<void>((resolve, reject) => {
          http.once('error', reject)
          http.listen(wanted, this.host, () => {
            http.off('error', reject)
            resolve()
          })
        })
        const port = (http.address() as {port: number}).port
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject)
          udp.bind(port, this.host, () => {
            udp.off('error', reject)
            resolve()
          })
        })
        // Garbage on the TCP port: answer 400 where possible and drop the connection, never the server.
        http.on('clientError', (_error, socket) => {
          if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
          else socket.destroy()
        })
        http.on('error', (error) => this.log(`http error: ${error.message}`))
        udp.on('message', (bytes, rinfo) => this.onDatagram(udp, bytes, rinfo.address, rinfo.port))
        udp.on('error', (error) => this.log(`udp error: ${error.message}`))
        http.requestTimeout = 30_000
        http.headersTimeout = 10_000
        this.http = http
        this.udp = udp
        this.port = port
        return
      } catch (error) {
        http.close()
        udp.close()
        const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
        if (!inUse || wanted !== 0 || attempt >= BIND_ATTEMPTS) throw error
      }
    }
  }

  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    this.route(request, response).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : error instanceof TorrentFormatError ? 400 : 500
      if (status === 500) this.log(`http ${request.method} ${request.url}: ${(error as Error).message}`)
      if (response.headersSent) response.destroy()
      else sendJson(response, status, {error: (error as Error).message})
    })
  }

  private async route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = request.url ?? '/'
    const question = url.indexOf('?')
    const pathname = question < 0 ? url : url.slice(0, question)
    const query = question < 0 ? '' : url.slice(question + 1)
    const from = plainAddress(request.socket.remoteAddress ?? '')
    const method = request.method ?? 'GET'

    if (pathname === '/announce' || pathname === '/scrape') {
      if (method !== 'GET') throw new HttpError(405, `${method} not allowed on ${pathname}`)
      response.writeHead(200, {'content-type': 'text/plain', 'cache-control': 'no-store'})
      response.end(pathname === '/announce' ? this.httpAnnounce(query, from) : this.httpScrape(query))
      return
    }
    if (pathname === '/torrents') {
      if (method === 'PUT') return this.putTorrent(request, response)
      if (method !== 'GET') throw new HttpError(405, `${method} not allowed on /torrents`)
      const name = new URLSearchParams(query).get('name') ?? undefined
      sendJson(
        response,
        200,
        this.pool.list(name).map(({meta}) => {
          const counts = this.swarms.counts(meta.infoHashHex)
          return {
            infoHash: meta.infoHashHex,
            name: meta.name,
            size: meta.length,
            pieceLength: meta.pieceLength,
            seeders: counts.complete,
            leechers: counts.incomplete,
            completed: counts.downloaded,
          }
        }),
      )
      return
    }
    const file = /^\/torrents\/([0-9a-fA-F]{40})\.torrent$/.exec(pathname)
    if (file) {
      if (method === 'DELETE') {
        if (!(await this.pool.remove(file[1].toLowerCase()))) throw new HttpError(404, `no torrent ${file[1].toLowerCase()} in the pool`)
        response.writeHead(204)
        response.end()
        return
      }
      if (method !== 'GET') throw new HttpError(405, `${method} not allowed on ${pathname}`)
      const entry = this.pool.get(file[1].toLowerCase())
      if (!entry) throw new HttpError(404, `no torrent ${file[1].toLowerCase()} in the pool`)
      response.writeHead(200, {'content-type': 'application/x-bittorrent', 'content-length': entry.torrent.length})
      response.end(entry.torrent)
      return
    }
    throw new HttpError(404, `no such path ${pathname}`)
  }

  private httpAnnounce(query: string, from: string): Buffer {
    try {
      const {request, compact, noPeerId} = parseAnnounce(query, from)
      const reply = this.swarms.announce(request, Date.now())
      if (this.options.verbose) this.log(`announce ${request.infoHash.toString('hex')} ${request.ip}:${request.port} ${request.event} left=${request.left}`)
      return encodeAnnounceReply(reply, this.interval, compact, noPeerId)
    } catch (error) {
      if (error instanceof TrackerRequestError) return encodeFailure(error.message)
      throw error
    }
  }

  private httpScrape(query: string): Buffer {
    try {
      const asked = parseScrape(query)
      const hashes =
        asked.length > 0
          ? asked
          : [...new Set([...this.swarms.infoHashes(), ...this.pool.list().map((entry) => entry.meta.infoHashHex)])].map((hex) => Buffer.from(hex, 'hex'))
      return encodeScrapeReply(hashes.map((infoHash) => ({infoHash, counts: this.swarms.counts(infoHash.toString('hex'))})))
    } catch (error) {
      if (error instanceof TrackerRequestError) return encodeFailure(error.message)
      throw error
    }
  }

  private async putTorrent(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > MAX_TORRENT_BYTES) throw new HttpError(413, `a .torrent is at most ${MAX_TORRENT_BYTES} bytes`)
      chunks.push(chunk)
    }
    if (size === 0) throw new HttpError(400, 'empty body: PUT the .torrent file')
    const {meta} = await this.pool.add(Buffer.concat(chunks), this.announceUrl)
    this.log(`pool: registered ${meta.infoHashHex} ${meta.name}`)
    sendJson(response, 201, {infoHash: meta.infoHashHex, name: meta.name, magnet: magnetUri(meta)})
  }

  private onDatagram(socket: UdpSocket, bytes: Buffer, address: string, port: number): void {
    let reply: Buffer | undefined
    try {
      reply = this.udpReply(bytes, plainAddress(address), port)
    } catch (error) {
      if (error instanceof UdpRequestError) reply = encodeUdpError(error.transactionId, error.message)
      else if (!(error instanceof UdpIgnore)) this.log(`udp ${address}:${port}: ${(error as Error).message}`)
    }
    if (reply) socket.send(reply, port, address)
  }

  private udpReply(bytes: Buffer, address: string, port: number): Buffer {
    const request = parseUdpRequest(bytes)
    const now = Date.now()
    if (request.action === Action.CONNECT) return encodeConnect(request.transactionId, this.ids.issue(address, port, now))
    if (!this.ids.valid(request.connectionId, address, port, now)) throw new UdpRequestError('invalid or expired connection id', request.transactionId)
    if (request.action === Action.ANNOUNCE) {
      const ip = request.ip === 0 ? address : dotted(request.ip)
      const reply = this.swarms.announce({...request.announce, ip}, now)
      if (this.options.verbose) this.log(`udp announce ${request.announce.infoHash.toString('hex')} ${ip}:${request.announce.port} ${request.announce.event}`)
      return encodeUdpAnnounce(request.transactionId, this.interval, reply)
    }
    return encodeUdpScrape(
      request.transactionId,
      request.infoHashes.map((hash) => this.swarms.counts(hash.toString('hex'))),
    )
  }
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  response.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)})
  response.end(text)
}
