/**
 * The proxy (`disk-client db proxy`): the one endpoint applications use.
 * Writes, and everything that is not a read, go to the main; the read
 * commands (GET MGET EXISTS KEYS DBSIZE) go round-robin to the replicas that
 * are up and whose lag, the main's replication offset minus the replica's
 * last acknowledged offset (both from the main's INFO replication, polled
 * every 100 ms), is within `maxLagBytes`; with none such, to the main. A read
 * that fails on a replica (it died since the last check) is sent to the main
 * instead, so the client sees no error.
 *
 * With `readYourWrites`, a connection that wrote reads from the main until
 * every replica that is up has acknowledged an offset at least that of the
 * main when the write was answered (the first poll started after it).
 *
 * Each client connection has its own connection to the main (following its
 * SELECT); reads to replicas share one connection per replica and database.
 * Replies are passed back as raw bytes.
 */
import net from 'node:net'

import {RespClient} from '../kv/client.js'
import {serveConnection, type Session} from '../kv/connection.js'
import {formatHostPort} from '../kv/launch.js'
import {OK, bulk, encodeCommand, error, type Encoded} from '../kv/resp.js'
import {NOT_INTEGER, READ_COMMANDS, WRONG_ARGS, parseInteger} from './commands.js'
import {DATABASES} from './rdb.js'
import {listenTcp} from '../net/listen.js'

export interface Address {
  host: string
  port: number
}

export interface DbProxyOptions {
  host?: string
  port?: number
  main: Address
  replicas: Address[]
  /** Largest lag in bytes a replica may have and still serve reads (default 1 MiB). */
  maxLagBytes?: number
  readYourWrites?: boolean
  /** How often the main's offsets and the replicas' health are checked (default 100 ms). */
  pollMs?: number
  log?: (line: string) => void
}

/** An upstream failed: connection refused, reset or closed. */
class UpstreamError extends Error {}

/** Where the RESP reply starting at `pos` ends, or how many bytes are needed to know. */
function replyEnd(buf: Buffer, pos: number): {end: number} | {need: number} {
  if (pos >= buf.length) return {need: pos + 1}
  const eol = buf.indexOf(10, pos)
  if (eol < 0) return {need: buf.length + 1}
  const type = buf[pos]
  if (type === 0x2b || type === 0x2d || type === 0x3a) return {end: eol + 1} // + - :
  const n = Number(buf.toString('latin1', pos + 1, eol - 1))
  if (!Number.isInteger(n)) throw new Error('bad reply from upstream')
  if (type === 0x24) {
    // $
    if (n < 0) return {end: eol + 1}
    const end = eol + 1 + n + 2
    return end <= buf.length ? {end} : {need: end}
  }
  if (type === 0x2a) {
    // *
    let at = eol + 1
    for (let i = 0; i < n; i++) {
      const item = replyEnd(buf, at)
      if ('need' in item) return item
      at = item.end
    }
    return {end: at}
  }
  throw new Error(`bad reply type '${String.fromCharCode(type)}' from upstream`)
}

type Done = (failure: Error | null, reply: Buffer | null) => void

/**
 * Upstreams with commands written since the last turn of the event loop:
 * they are uncorked once, in setImmediate, after every socket that was
 * readable in this turn has been read. (A process.nextTick would run after
 * each client's 'data' callback, so with many clients sending one command
 * each, every command would leave in its own write.)
 */
const corked: Upstream[] = []
let uncorkScheduled = false
function uncorkAll(): void {
  uncorkScheduled = false
  for (const upstream of corked.splice(0)) upstream.uncork()
}

/** One connection to the main or a replica, on behalf of one client connection. */
class Upstream {
  private readonly socket: net.Socket
  private readonly waiting: Done[] = []
  private chunks: Buffer[] = []
  private have = 0
  private need = 1
  private corked = false
  closed = false

  constructor(
    readonly address: Address,
    db: number,
  ) {
    this.socket = net.connect(address)
    this.socket.setNoDelay(true)
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk))
    this.socket.on('error', () => undefined)
    this.socket.on('close', () => this.fail())
    if (db !== 0) this.request(['SELECT', String(db)], () => undefined)
  }

  send(args: Array<Buffer | string>): Promise<Buffer> {
    return new Promise((resolve, reject) => this.request(args, (failure, reply) => (failure ? reject(failure) : resolve(reply!))))
  }

  /** Sends one command; `done` gets its raw reply, in order, or the failure of the connection. */
  request(args: Array<Buffer | string>, done: Done): void {
    if (this.closed) {
      done(new UpstreamError(`${formatHostPort(this.address)} is unreachable`), null)
      return
    }
    this.waiting.push(done)
    // Commands sent in one turn of the event loop (from many clients, on a shared upstream) leave in one write.
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      corked.push(this)
      if (!uncorkScheduled) {
        uncorkScheduled = true
        setImmediate(uncorkAll)
      }
    }
    for (const part of encodeCommand(args)) this.socket.write(part)
  }

  uncork(): void {
    this.corked = false
    this.socket.uncork()
  }

  close(): void {
    this.socket.destroy()
  }

  private receive(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.have += chunk.length
    if (this.have < this.need) return
    let buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.have)
    let pos = 0
    for (;;) {
      let result
      try {
        result = replyEnd(buf, pos)
      } catch {
        this.socket.destroy()
        return
      }
      if ('need' in result) {
        this.need = result.need - pos
        break
      }
      const done = this.waiting.shift()
      done?.(null, buf.subarray(pos, result.end))
      pos = result.end
      if (pos === buf.length) {
        this.need = 1
        break
      }
    }
    buf = buf.subarray(pos)
    this.chunks = buf.length > 0 ? [buf] : []
    this.have = buf.length
  }

  private fail(): void {
    this.closed = true
    const failure = new UpstreamError(`${formatHostPort(this.address)} is unreachable`)
    for (const done of this.waiting.splice(0)) done(failure, null)
  }
}

interface ReplicaState {
  address: Address
  reads: number
  /** Answers PING. */
  reachable: boolean
  /** Its last acknowledged offset, from the main's INFO; null when the main does not list it online. */
  ack: number | null
  probe: RespClient | null
}

interface ClientState {
  session: Session
  main: Upstream | null
  /** Read-your-writes: waiting for the main's offset after a write (null), then that offset. */
  rywTarget: number | null
  rywActive: boolean
}

export class DbProxy {
  private readonly options: DbProxyOptions
  private readonly tcp = net.createServer((socket) => this.accept(socket))
  private readonly sockets = new Set<net.Socket>()
  private readonly replicas: ReplicaState[]
  private mainReads = 0
  private mainOffset = 0
  private rr = 0
  private timer: NodeJS.Timeout | null = null
  private polling = false
  private mainProbe: RespClient | null = null
  /** Connections that wrote and wait for the next poll's offset. */
  private awaitingOffset = new Set<ClientState>()
  private bound: Address | null = null
  private readonly maxLag: number

  constructor(options: DbProxyOptions) {
    this.options = options
    this.maxLag = options.maxLagBytes ?? 1024 * 1024
    this.replicas = options.replicas.map((address) => ({address, reads: 0, reachable: false, ack: null, probe: null}))
  }

  get address(): Address {
    if (!this.bound) throw new Error('proxy is not started')
    return this.bound
  }

  async start(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1'
    this.bound = await listenTcp(this.tcp, this.options.port ?? 0, host)
    await this.poll()
    this.timer = setInterval(() => void this.poll(), this.options.pollMs ?? 100)
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    for (const socket of this.sockets) socket.destroy()
    this.mainProbe?.close()
    for (const replica of this.replicas) replica.probe?.close()
    for (const upstream of this.shared.values()) upstream.close()
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()))
  }

  // ---- health and lag --------------------------------------------------------

  private async poll(): Promise<void> {
    if (this.polling) return
    this.polling = true
    const waiting = [...this.awaitingOffset]
    try {
      await Promise.all([this.pollMain(waiting), ...this.replicas.map((replica) => this.pollReplica(replica))])
    } finally {
      this.polling = false
    }
  }

  private async pollMain(waiting: ClientState[]): Promise<void> {
    try {
      this.mainProbe ??= await RespClient.connect({...this.options.main, connectTimeoutMs: 1000, idleTimeoutMs: 2000})
      const text = String(await this.mainProbe.callString('INFO', 'replication'))
      const fields = new Map(text.split(/\r?\n/).map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]))
      this.mainOffset = Number(fields.get('master_repl_offset') ?? 0)
      const acks = new Map<string, number>()
      for (const [name, value] of fields) {
        if (!/^slave\d+$/.test(name)) continue
        const slave = Object.fromEntries(value.split(',').map((pair) => pair.split('=')))
        if (slave.state === 'online') acks.set(`${slave.ip}:${slave.port}`, Number(slave.offset))
      }
      for (const replica of this.replicas) {
        const {host, port} = replica.address
        replica.ack = acks.get(`${host}:${port}`) ?? [...acks].find(([addr]) => addr.endsWith(`:${port}`))?.[1] ?? null
      }
      for (const state of waiting) {
        if (!this.awaitingOffset.delete(state)) continue
        state.rywTarget = this.mainOffset
      }
    } catch {
      this.mainProbe?.close()
      this.mainProbe = null
    }
  }

  private async pollReplica(replica: ReplicaState): Promise<void> {
    try {
      replica.probe ??= await RespClient.connect({...replica.address, connectTimeoutMs: 500, idleTimeoutMs: 1000})
      await replica.probe.call('PING')
      if (!replica.reachable) this.options.log?.(`replica ${formatHostPort(replica.address)} is up`)
      replica.reachable = true
    } catch {
      if (replica.reachable) this.options.log?.(`replica ${formatHostPort(replica.address)} is down`)
      replica.reachable = false
      replica.probe?.close()
      replica.probe = null
    }
  }

  private lag(replica: ReplicaState): number | null {
    return replica.ack === null ? null : Math.max(0, this.mainOffset - replica.ack)
  }

  private usable(replica: ReplicaState): boolean {
    const lag = this.lag(replica)
    return replica.reachable && lag !== null && lag <= this.maxLag
  }

  /** The replica the next read goes to, or -1 for the main. */
  private choose(state: ClientState): number {
    if (state.rywActive) {
      const target = state.rywTarget
      const up = this.replicas.filter((replica) => replica.reachable && replica.ack !== null)
      if (target === null || up.some((replica) => replica.ack! < target)) return -1
      state.rywActive = false
    }
    for (let i = 0; i < this.replicas.length; i++) {
      const index = (this.rr + i) % this.replicas.length
      if (this.usable(this.replicas[index])) {
        this.rr = index + 1
        return index
      }
    }
    return -1
  }

  // ---- clients ----------------------------------------------------------------

  private accept(socket: net.Socket): void {
    this.sockets.add(socket)
    const state: ClientState = {session: {db: 0}, main: null, rywTarget: null, rywActive: false}
    socket.on('close', () => {
      this.sockets.delete(socket)
      this.awaitingOffset.delete(state)
      state.main?.close()
    })
    serveConnection(socket, (args, session) => {
      state.session = session
      return this.dispatch(state, args)
    })
  }

  private mainUpstream(state: ClientState): Upstream {
    if (!state.main || state.main.closed) state.main = new Upstream(this.options.main, state.session.db)
    return state.main
  }

  /**
   * Reads to a replica share one pipelined connection per replica and
   * database among all clients: reads never block, so no client waits behind
   * another's command for long, and the reads of many clients leave in one
   * write. (The main is per client: WAIT would hold up the others.)
   */
  private replicaUpstream(state: ClientState, index: number): Upstream {
    const key = index * DATABASES + state.session.db
    let upstream = this.shared.get(key)
    if (!upstream || upstream.closed) {
      upstream = new Upstream(this.replicas[index].address, state.session.db)
      this.shared.set(key, upstream)
    }
    return upstream
  }

  private readonly shared = new Map<number, Upstream>()

  private toMain(state: ClientState, args: Buffer[]): Promise<Encoded> {
    return this.mainUpstream(state)
      .send(args)
      .catch((failure: Error) => error(`ERR the main is unreachable: ${failure.message}`))
  }

  readsInfo(): string {
    const lines = ['# Reads', `main:reads=${this.mainReads},addr=${formatHostPort(this.options.main)}`]
    this.replicas.forEach((replica, i) => {
      const up = replica.reachable && replica.ack !== null
      lines.push(`replica${i}:addr=${formatHostPort(replica.address)},reads=${replica.reads},state=${up ? 'up' : 'down'},lag_bytes=${this.lag(replica) ?? -1}`)
    })
    return lines.join('\r\n') + '\r\n'
  }

  private dispatch(state: ClientState, args: Buffer[]): Encoded | Promise<Encoded> {
    const name = args[0].toString('latin1').toUpperCase()
    if (name === 'INFO' && args.length === 2 && args[1].toString('latin1').toLowerCase() === 'reads') return bulk(this.readsInfo())
    if (name === 'CONFIG' && args[1]?.toString('latin1').toUpperCase() === 'RESETSTAT') {
      this.mainReads = 0
      for (const replica of this.replicas) replica.reads = 0
      return OK
    }
    if (name === 'SELECT') {
      if (args.length !== 2) return WRONG_ARGS(name)
      const db = parseInteger(args[1])
      if (db === null) return NOT_INTEGER
      if (db < 0 || db >= DATABASES) return error('ERR DB index is out of range')
      state.session.db = db
      if (state.main && !state.main.closed) void state.main.send(['SELECT', String(db)]).catch(() => undefined)
      return OK
    }
    if (READ_COMMANDS.has(name)) {
      const index = this.choose(state)
      if (index < 0) {
        this.mainReads++
        return this.toMain(state, args)
      }
      const replica = this.replicas[index]
      replica.reads++
      const upstream = this.replicaUpstream(state, index)
      return new Promise<Encoded>((resolve) =>
        upstream.request(args, (failure, reply) => {
          if (!failure) return resolve(reply!)
          // It died since the last check: the main answers instead.
          replica.reads--
          replica.reachable = false
          this.mainReads++
          resolve(this.toMain(state, args))
        }),
      )
    }
    if (name === 'PING' || name === 'ECHO' || name === 'COMMAND' || name === 'CLIENT' || name === 'CONFIG' || name === 'INFO') return this.toMain(state, args)
    // A write (or anything else): the main.
    const reply = this.toMain(state, args)
    if (!this.options.readYourWrites) return reply
    return reply.then((answer) => {
      state.rywActive = true
      state.rywTarget = null
      this.awaitingOffset.add(state)
      return answer
    })
  }
}
