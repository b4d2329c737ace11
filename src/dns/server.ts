/**
 * The DNS server: UDP and TCP on one address and port, authoritative for
 * its zones, accepting RFC 2136 updates from allowed addresses, and, with a
 * resolver, answering everything else by iterative resolution.
 */
import {createSocket, type Socket as UdpSocket} from 'node:dgram'
import {BlockList, createServer, isIPv4, isIPv6, type Server as TcpServer, type Socket as TcpSocket} from 'node:net'

import {Authority} from './authority.js'
import {DnsCache} from './cache.js'
import {PacketCache} from './packet-cache.js'
import {Resolver, type Resolution, type ResolverStats} from './resolver.js'
import {formatEndpoint, type Endpoint} from './transport.js'
import {
  CLASS_IN,
  CLASSIC_UDP_LIMIT,
  decodeMessage,
  encodeMessage,
  FrameReader,
  frame,
  Opcode,
  ourEdns,
  Rcode,
  RCODE_NAMES,
  replyTo,
  udpLimitFor,
  WireError,
  type Message,
} from './wire.js'
import type {Zone} from './zone.js'

export interface DnsServerOptions {
  /** Address to bind UDP and TCP; default 127.0.0.1. */
  host?: string
  /** Port for both; 0 picks one free for both. Default 0. */
  port?: number
  /** Master files to serve; each one's journal (`FILE.jnl`) is replayed and appended to. */
  zoneFiles?: string[]
  /** In-memory zones to serve as well (updates to them are not persisted). */
  zones?: Zone[]
  /** Resolve queries outside our zones iteratively from `roots`. */
  resolver?: boolean
  /** Root servers for resolver mode. */
  roots?: Endpoint[]
  /** CIDRs (or single addresses) allowed to send UPDATEs; none means every update is refused. */
  allowUpdate?: string[]
  /** Resolver limits and timeouts (ms); see ResolverOptions. */
  queryTimeoutMs?: number
  resolveTimeoutMs?: number
  /** A TCP connection idle this long (ms) is closed; default 10000 (RFC 7766 suggests seconds). */
  tcpIdleMs?: number
  /** Keep encoded authoritative UDP answers for reuse (see packet-cache.ts); default true. */
  packetCache?: boolean
  /** Event log (updates, errors); one line per call. */
  log?: (line: string) => void
  /** Log every query and every upstream query too. */
  verbose?: boolean
}

export interface DnsServerStats {
  queries: number
  udp: number
  tcp: number
  updates: number
  refusedUpdates: number
  dropped: number
  formerr: number
  upstream?: ResolverStats & {cacheEntries: number}
}

/** A reply and the UDP size its query allows. */
type Reply = Message & {
  udpLimit?: number
  /** Depends only on the query and the zones (not on the cache, the clock or the client). */
  cacheable?: boolean
}

interface Client {
  address: string
  transport: 'udp' | 'tcp'
}

const MAX_TCP_CONNECTIONS = 256
const BIND_ATTEMPTS = 20

export class DnsServer {
  readonly authority = new Authority()
  resolver?: Resolver
  private udp?: UdpSocket
  private tcp?: TcpServer
  private readonly connections = new Set<TcpSocket>()
  private readonly packetCache = new PacketCache()
  private readonly allowUpdate = new BlockList()
  private readonly updatesAllowed: boolean
  private boundPort = 0
  private readonly counters = {queries: 0, udp: 0, tcp: 0, updates: 0, refusedUpdates: 0, dropped: 0, formerr: 0}

  constructor(private readonly options: DnsServerOptions = {}) {
    for (const cidr of options.allowUpdate ?? []) addCidr(this.allowUpdate, cidr)
    this.updatesAllowed = (options.allowUpdate ?? []).length > 0
    if (options.resolver && (options.roots ?? []).length === 0) throw new Error('resolver mode needs at least one root server')
  }

  get host(): string {
    return this.options.host ?? '127.0.0.1'
  }

  get port(): number {
    return this.boundPort
  }

  /** Where it listens, e.g. `127.0.0.1:5353`. */
  get endpoint(): Endpoint {
    return {host: this.host, port: this.boundPort}
  }

  get stats(): DnsServerStats {
    const upstream = this.resolver ? {...this.resolver.stats, cacheEntries: this.resolver.cache.size} : undefined
    return {...this.counters, upstream}
  }

  /** Loads the zones, then binds UDP and TCP on one port. */
  async start(): Promise<void> {
    for (const zone of this.options.zones ?? []) this.authority.hold(zone)
    for (const file of this.options.zoneFiles ?? []) this.authority.loadFile(file)
    if (this.options.resolver) {
      this.resolver = new Resolver({
        roots: this.options.roots ?? [],
        cache: new DnsCache(),
        queryTimeoutMs: this.options.queryTimeoutMs,
        resolveTimeoutMs: this.options.resolveTimeoutMs,
        log: this.options.verbose ? this.options.log : undefined,
      })
    }
    await this.bind()
  }

  /** Closes both sockets, every TCP connection, the resolver's sockets and the journals. */
  async stop(): Promise<void> {
    for (const connection of this.connections) connection.destroy()
    this.connections.clear()
    const tcp = this.tcp
    const udp = this.udp
    this.tcp = this.udp = undefined
    await Promise.all([
      tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined,
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
    ])
    this.resolver?.close()
    await this.authority.close()
  }

  private async bind(): Promise<void> {
    const wanted = this.options.port ?? 0
    for (let attempt = 1; ; attempt++) {
      const udp = createSocket({type: isIPv6(this.host) ? 'udp6' : 'udp4'})
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject)
          udp.bind(wanted, this.host, () => {
            udp.off('error', reject)
            resolve()
          })
        })
        const port = udp.address().port
        const tcp = createServer((socket) => this.onConnection(socket))
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject)
          tcp.listen(port, this.host, () => {
            tcp.off('error', reject)
            resolve()
          })
        })
        udp.on('message', (bytes, rinfo) => this.onDatagram(udp, bytes, rinfo.address, rinfo.port))
        udp.on('error', (error) => this.options.log?.(`udp error: ${error.message}`))
        tcp.on('error', (error) => this.options.log?.(`tcp error: ${error.message}`))
        this.udp = udp
        this.tcp = tcp
        this.boundPort = port
        return
      } catch (error) {
        udp.close()
        const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
        if (!inUse || wanted !== 0 || attempt >= BIND_ATTEMPTS) throw error
      }
    }
  }

  private onDatagram(socket: UdpSocket, bytes: Buffer, address: string, port: number): void {
    this.counters.udp++
    const key = this.options.verbose || this.options.packetCache === false ? undefined : PacketCache.keyOf(bytes)
    const generation = this.authority.generation
    if (key !== undefined) {
      const hit = this.packetCache.reply(key, bytes, generation)
      if (hit) {
        this.counters.queries++
        socket.send(hit, port, address)
        return
      }
    }
    this.respond(bytes, {address, transport: 'udp'}, (message) => {
      if (this.udp !== socket) return
      const encoded = encodeMessage(message, message.udpLimit ?? CLASSIC_UDP_LIMIT)
      if (key !== undefined && message.cacheable) this.packetCache.store(key, encoded, generation)
      socket.send(encoded, port, address)
    })
  }

  /**
   * Handles one request and passes the reply (if any) to `deliver`. A bug
   * met on the way is logged and the request dropped: the server keeps
   * running whatever arrives.
   */
  private respond(bytes: Buffer, client: Client, deliver: (message: Reply) => void): void {
    const fail = (error: unknown): void => {
      this.counters.dropped++
      this.options.log?.(`error handling a ${client.transport} request from ${client.address}: ${String(error)}`)
    }
    const send = (message: Reply | undefined): void => {
      try {
        if (message) deliver(message)
      } catch (error) {
        fail(error)
      }
    }
    try {
      const reply = this.handle(bytes, client)
      if (reply instanceof Promise) reply.then(send, fail)
      else send(reply)
    } catch (error) {
      fail(error)
    }
  }

  private onConnection(socket: TcpSocket): void {
    if (this.connections.size >= MAX_TCP_CONNECTIONS) {
      socket.destroy()
      return
    }
    this.connections.add(socket)
    const reader = new FrameReader()
    socket.setTimeout(this.options.tcpIdleMs ?? 10_000, () => socket.destroy())
    socket.on('close', () => this.connections.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.on('data', (chunk) => {
      for (const bytes of reader.push(chunk)) {
        this.counters.tcp++
        if (bytes.length < 12) {
          this.counters.dropped++
          socket.destroy()
          return
        }
        this.respond(bytes, {address: socket.remoteAddress ?? '', transport: 'tcp'}, (message) => {
          if (!socket.destroyed) socket.write(frame(encodeMessage(message)))
        })
      }
    })
  }

  /** Turns one request into a reply, or undefined to drop it. */
  handle(bytes: Buffer, client: Client): Reply | undefined | Promise<Reply | undefined> {
    let query: Message
    try {
      query = decodeMessage(bytes)
    } catch (error) {
      return this.malformed(error as WireError, client)
    }
    if (query.qr) {
      this.counters.dropped++
      return undefined
    }
    this.counters.queries++
    const reply: Reply = {...replyTo(query), udpLimit: udpLimitFor(query)}
    if (this.options.resolver) reply.ra = true
    if (query.edns && query.edns.version > 0) {
      // RFC 6891 §6.1.3: BADVERS is extended rcode 16 = 1 << 4.
      reply.edns = ourEdns(1)
      reply.questions = query.questions
      return reply
    }
    if (query.opcode === Opcode.UPDATE) return this.update(query, reply, client)
    if (query.opcode !== Opcode.QUERY) return withRcode(reply, Rcode.NOTIMP)
    if (query.questions.length !== 1) return withRcode(reply, Rcode.FORMERR)
    const [question] = query.questions
    if (question.klass !== CLASS_IN) return withRcode(reply, Rcode.REFUSED)
    // Zone transfers are not offered (RFC 5936 §3.2 lets a server refuse them).
    if (question.type === 'AXFR' || question.type === 'IXFR') return withRcode(reply, Rcode.REFUSED)
    if (this.options.verbose) this.options.log?.(`query ${client.transport} ${client.address} ${question.name} ${question.type}${query.rd ? '' : ' (no RD)'}`)
    if (this.authority.answer(question, reply)) return {...reply, cacheable: true}
    if (!this.resolver) return {...withRcode(reply, Rcode.REFUSED), cacheable: true}
    if (!query.rd) return this.resolved(reply, this.resolver.fromCacheOnly(question.name, question.type))
    return this.resolver.resolve(question.name, question.type).then((resolution) => this.resolved(reply, resolution))
  }

  private resolved(reply: Reply, resolution: Resolution): Reply {
    reply.rcode = resolution.rcode
    reply.answers = resolution.answers
    reply.authorities = resolution.authorities
    reply.additionals = resolution.additionals
    return reply
  }

  private malformed(error: WireError, client: Client): Message | undefined {
    if (error.id === undefined || error.qr) {
      this.counters.dropped++
      return undefined
    }
    this.counters.formerr++
    if (this.options.verbose) this.options.log?.(`FORMERR to ${client.transport} ${client.address}: ${error.message}`)
    return {
      id: error.id,
      qr: true,
      opcode: error.opcode ?? 0,
      aa: false,
      tc: false,
      rd: false,
      ra: Boolean(this.options.resolver),
      rcode: Rcode.FORMERR,
      questions: [],
      answers: [],
      authorities: [],
      additionals: [],
    }
  }

  private async update(query: Message, reply: Reply, client: Client): Promise<Reply> {
    const zoneName = query.questions[0]?.name ?? '?'
    if (!this.updatesAllowed || !this.allowUpdate.check(plainAddress(client.address), isIPv6(plainAddress(client.address)) ? 'ipv6' : 'ipv4')) {
      this.counters.refusedUpdates++
      this.options.log?.(`update for ${zoneName} from ${client.address} refused: address not allowed`)
      return withRcode(reply, Rcode.REFUSED)
    }
    let rcode: number
    try {
      rcode = await this.authority.update(query)
    } catch (error) {
      this.options.log?.(`update for ${zoneName} failed: ${(error as Error).message}`)
      rcode = Rcode.SERVFAIL
    }
    if (rcode === Rcode.NOERROR) this.counters.updates++
    this.options.log?.(`update for ${zoneName} from ${client.address}: ${RCODE_NAMES[rcode] ?? rcode}`)
    return withRcode(reply, rcode)
  }
}

function withRcode(reply: Reply, rcode: number): Reply {
  reply.rcode = rcode
  return reply
}

/** `::ffff:127.0.0.1` → `127.0.0.1`. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address
}

/** Adds `a.b.c.d/n`, `x::/n` or a single address to a BlockList. */
export function addCidr(list: BlockList, cidr: string): void {
  const [address, bits] = cidr.split('/')
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined
  const max = family === 'ipv4' ? 32 : 128
  const prefix = bits === undefined ? max : Number(bits)
  if (!family || !/^\d*$/.test(bits ?? '') || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    throw new Error(`not an address or CIDR: ${cidr}`)
  }
  list.addSubnet(address, prefix, family)
}

export {formatEndpoint}
