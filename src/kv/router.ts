/**
 * The router: speaks RESP to clients, places keys on the ring, and keeps the
 * replicas converging (hints, buffer, read repair, anti-entropy). Its own
 * LevelDB (in `dataDir`) holds membership, hints, the buffer and the clock's
 * high-water mark, so a restarted router loses none of them. Heartbeats
 * arrive on the UDP port with the same number as the TCP port.
 */
import net from 'node:net'

import {ReliableSocket} from '../net/reliable-udp.js'
import {RespReplyError} from './client.js'
import {Later, serveConnection, type Session} from './connection.js'
import {AntiEntropy} from './anti-entropy.js'
import {globToRegExp} from './glob.js'
import {decodeHeartbeat} from './heartbeat.js'
import {RouterStore} from './hints.js'
import {Membership} from './membership.js'
import {NoServerError, Replicas, type ReadResult} from './replicas.js'
import {KeyLock} from './key-lock.js'
import {DATABASES, MAX_VALUE_BYTES, NULL_BULK, OK, PONG, array, bulk, error, integer, type Encoded} from './resp.js'
import {Ring} from './ring.js'
import {HybridClock, LOGICAL_BITS, type Versioned} from './versions.js'

export interface KvRouterOptions {
  /** Address to listen on, TCP and UDP (default 127.0.0.1). */
  host?: string
  /** TCP port for clients, and UDP port for heartbeats (0 picks one free for both). */
  port?: number
  /** Number of servers, numbered 0 … servers-1. */
  servers: number
  /** Copies of each key (default 2). */
  replicas?: number
  /** The router's own LevelDB folder. */
  dataDir: string
  /** Period of anti-entropy rounds (default 10000 ms; replicas converge within 30 s). 0 turns anti-entropy off (tests, diagnosis). */
  antiEntropyMs?: number
  /** A server is down after this long without a heartbeat (default 3000 ms). */
  heartbeatTimeoutMs?: number
  /** Virtual nodes per server (default 64). */
  vnodes?: number
  log?: (line: string) => void
}

// Defined beside the protocol, so that the embedded mode checks database numbers without loading the router.
export {DATABASES}
/** The database of file pieces (the cluster backend's PIECE_DB): the router counts their bytes in `# Stats`. */
export const PIECE_DB = 2
const DB_PREFIX = Array.from({length: DATABASES}, (_, db) => Buffer.from(`${db}:`))

/** The internal key of a user key: `<db>:<key>`. Servers answer `GET` of this form directly. */
export function internalKey(db: number, key: Buffer): Buffer {
  const prefix = DB_PREFIX[db]
  const out = Buffer.allocUnsafe(prefix.length + key.length)
  prefix.copy(out, 0)
  key.copy(out, prefix.length)
  return out
}

export interface ClusterInfo {
  servers: number
  servers_up: number
  replicas: number
  hints_pending: number
  buffered_writes: number
  members: Array<{number: number; addr: string; state: 'up' | 'down'; last_heartbeat_ms: number; hints: number}>
}

const CASFAIL = 'CASFAIL'

export class KvRouter {
  readonly ring: Ring
  readonly store: RouterStore
  readonly members: Membership
  readonly antiEntropy: AntiEntropy
  private readonly replicas: Replicas
  private readonly clock = new HybridClock()
  private readonly options: KvRouterOptions
  private readonly log: (line: string) => void
  private tcp: net.Server | null = null
  private udp: ReliableSocket | null = null
  private readonly sockets = new Set<net.Socket>()
  private readonly timers: NodeJS.Timeout[] = []
  private readonly locks = new KeyLock()
  private readonly orders = new WeakMap<Session, OrderState>()
  private bound: {host: string; port: number} | null = null
  /** Bytes of piece values (database 2) received from and sent to clients. */
  private pieceBytesIn = 0
  private pieceBytesOut = 0
  /** The placement map's version: changes whenever membership (addresses, up/down) changes. */
  private mapVersion = Date.now()
  private mapSignature = ''

  constructor(options: KvRouterOptions) {
    this.options = options
    this.log = options.log ?? (() => undefined)
    this.ring = new Ring(options.servers, options.replicas ?? 2, options.vnodes ?? 64)
    this.store = new RouterStore(options.dataDir)
    this.members = new Membership({
      servers: options.servers,
      store: this.store,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 3000,
      log: this.log,
      onUp: (number) => this.onUp(number),
    })
    this.replicas = new Replicas(this.ring, this.members, this.store, this.clock)
    this.antiEntropy = new AntiEntropy(this.ring, this.members, this.replicas)
  }

  private get antiEntropyOn(): boolean {
    return this.options.antiEntropyMs !== 0
  }

  get address(): {host: string; port: number} {
    if (!this.bound) throw new Error('router is not started')
    return this.bound
  }

  async start(): Promise<void> {
    await this.store.open()
    // Versions issued before a crash may be ahead of the saved mark by up to its save period.
    this.clock.observe((await this.store.loadClock()) + 2000 * LOGICAL_BITS)
    await this.listen()
    void this.receiveHeartbeats(this.udp!)
    await this.members.start()
    const every = (ms: number, job: () => unknown): void => {
      this.timers.push(setInterval(() => void Promise.resolve(job()).catch(() => undefined), ms))
    }
    every(1000, () => this.store.saveClock(this.clock.current))
    every(1000, () => this.replay())
    if (this.antiEntropyOn) every(this.options.antiEntropyMs ?? 10_000, () => this.antiEntropy.round())
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer)
    this.timers.length = 0
    this.members.stop()
    for (const socket of this.sockets) socket.destroy()
    if (this.tcp) await new Promise<void>((resolve) => this.tcp!.close(() => resolve()))
    await this.udp?.close()
    await this.store.saveClock(this.clock.current).catch(() => undefined)
    await this.store.close()
  }

  /** TCP and UDP on the same port number; with port 0, retry until one number is free for both. */
  private async listen(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1'
    for (let attempt = 0; ; attempt++) {
      const tcp = net.createServer((socket) => this.accept(socket))
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject)
        tcp.listen(this.options.port ?? 0, host, () => {
          tcp.off('error', reject)
          resolve()
        })
      })
      const port = (tcp.address() as net.AddressInfo).port
      const udp = new ReliableSocket()
      try {
        await udp.bind(port, host)
      } catch (failure) {
        await new Promise<void>((resolve) => tcp.close(() => resolve()))
        await udp.close()
        if ((this.options.port ?? 0) !== 0 || attempt >= 10) throw failure
        continue
      }
      this.tcp = tcp
      this.udp = udp
      this.bound = {host, port}
      return
    }
  }

  private async receiveHeartbeats(udp: ReliableSocket): Promise<void> {
    for await (const message of udp) {
      const beat = decodeHeartbeat(message.data)
      if (beat) this.members.heard(beat)
    }
  }

  private onUp(number: number): void {
    void this.replicas.replayHints(number).then(() => this.replicas.replayBuffer())
    if (!this.antiEntropyOn) return
    const soon = setTimeout(() => void this.antiEntropy.round().catch(() => undefined), 500)
    soon.unref()
  }

  private async replay(): Promise<void> {
    for (const member of this.members.members) {
      if (member.state === 'up' && this.store.hintsFor(member.number) > 0) await this.replicas.replayHints(member.number)
    }
    await this.replicas.replayBuffer()
  }

  /** The `# Cluster` view, as INFO and `cluster status` show it. */
  clusterInfo(): ClusterInfo {
    const now = Date.now()
    return {
      servers: this.ring.servers,
      servers_up: this.members.upCount,
      replicas: this.ring.replicas,
      hints_pending: this.store.hintsPending,
      buffered_writes: this.store.bufferedWrites,
      members: this.members.members.map((member) => ({
        number: member.number,
        addr: member.address ? `${member.address.host}:${member.address.port}` : '',
        state: member.state,
        last_heartbeat_ms: member.lastHeartbeat === null ? -1 : now - member.lastHeartbeat,
        hints: this.store.hintsFor(member.number),
      })),
    }
  }

  private infoText(section: string | undefined): string {
    const info = this.clusterInfo()
    const server = ['# Server', 'redis_version:7.0.0', 'redis_mode:disk-client-router', `tcp_port:${this.address.port}`, 'loading:0']
    const cluster = [
      '# Cluster',
      `servers:${info.servers}`,
      `servers_up:${info.servers_up}`,
      `replicas:${info.replicas}`,
      `hints_pending:${info.hints_pending}`,
      `buffered_writes:${info.buffered_writes}`,
      ...info.members.map((m) => `server${m.number}:addr=${m.addr},state=${m.state},last_heartbeat_ms=${m.last_heartbeat_ms},hints=${m.hints}`),
    ]
    const repairs = this.antiEntropy.stats
    const stats = [
      '# Stats',
      `piece_bytes_in:${this.pieceBytesIn}`,
      `piece_bytes_out:${this.pieceBytesOut}`,
      `anti_entropy_rounds:${repairs.rounds}`,
      `anti_entropy_buckets_repaired:${repairs.bucketsRepaired}`,
      `anti_entropy_keys_copied:${repairs.keysCopied}`,
    ]
    const wanted = section?.toLowerCase()
    const parts = wanted === 'cluster' ? [cluster] : wanted === 'server' ? [server] : wanted === 'stats' ? [stats] : [server, cluster, stats]
    return parts.map((lines) => lines.join('\r\n') + '\r\n').join('\r\n')
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    serveConnection(socket, (args, session) => this.dispatch(args, session))
  }

  /**
   * Pipelined commands run concurrently, except that a command waits for the
   * earlier commands of the same connection on the same keys (and a keyless
   * one such as KEYS waits for all of them), so `SET k v; GET k` in one
   * pipeline reads its own write. The bookkeeping is by callback (Later),
   * not promises: it runs for every keyed command.
   */
  private dispatch(args: Buffer[], session: Session): Encoded | Promise<Encoded> | Later {
    const name = commandName(args[0])
    const keys = keysOf(name, args)
    if (keys === undefined) return this.execute(name, args, session)
    let order = this.orders.get(session)
    if (!order) this.orders.set(session, (order = {byKey: new Map(), all: new Set(), barrier: null, solo: null, soloKeys: null}))
    // Nothing of this connection in flight (the common case without
    // pipelining): nothing to wait for, and the command is kept as the
    // connection's only one in flight (`solo`), without the map and set,
    // whose entries churn for every request. A second command arriving
    // while it runs moves it into them first.
    if (order.solo === null && order.all.size === 0) {
      const result = this.execute(name, args, session)
      let solo: Later
      if (result instanceof Later) {
        if (result.done) return result
        solo = result
      } else if (result instanceof Promise) solo = Later.from(result)
      else return result
      const state = order
      state.solo = solo
      state.soloKeys = keys
      solo.whenDone(() => {
        if (state.solo !== solo) return
        state.solo = null
        state.soloKeys = null
      })
      return solo
    }
    if (order.solo) this.track(order, order.solo, idsOf(order.soloKeys))
    const ids = idsOf(keys)
    const waits: Later[] = []
    if (ids === null) for (const earlier of order.all) waits.push(earlier)
    else {
      if (order.barrier) waits.push(order.barrier)
      for (const id of ids) {
        const previous = order.byKey.get(id)
        if (previous) waits.push(previous)
      }
    }
    let later: Later
    if (waits.length === 0) {
      const result = this.execute(name, args, session)
      if (result instanceof Later) {
        if (result.done) return result
        later = result
      } else if (result instanceof Promise) later = Later.from(result)
      else return result
    } else {
      later = new Later()
      let left = waits.length
      const run = (): void => {
        if (--left > 0) return
        let result
        try {
          result = this.execute(name, args, session)
        } catch (failure) {
          later.fail(failure as Error)
          return
        }
        if (result instanceof Later) result.whenDone(() => later.settle(result.reply as Encoded))
        else if (result instanceof Promise) result.then((reply) => later.settle(reply), (failure: Error) => later.fail(failure))
        else later.settle(result)
      }
      for (const earlier of waits) earlier.whenDone(run)
    }
    this.track(order, later, ids)
    return later
  }

  /** Registers a command in flight in its connection's ordering state, until it settles. */
  private track(state: OrderState, later: Later, ids: string[] | null): void {
    if (state.solo === later) {
      state.solo = null
      state.soloKeys = null
    }
    state.all.add(later)
    if (ids === null) state.barrier = later
    else for (const id of ids) state.byKey.set(id, later)
    later.whenDone(() => {
      state.all.delete(later)
      if (state.barrier === later) state.barrier = null
      if (ids) for (const id of ids) if (state.byKey.get(id) === later) state.byKey.delete(id)
    })
  }

  private execute(name: string, args: Buffer[], session: Session): Encoded | Promise<Encoded> | Later {
    const n = args.length
    switch (name) {
      case 'GET':
        return n === 2 ? this.get(internalKey(session.db, args[1]), session.db === PIECE_DB) : wrongArity(name)
      case 'SET':
        if (n !== 3) return n > 3 ? error('ERR syntax error') : wrongArity(name)
        if (session.db === PIECE_DB) this.pieceBytesIn += args[2].length
        return this.set(internalKey(session.db, args[1]), args[2])
      case 'DEL':
        return n >= 2 ? this.del(args.slice(1).map((key) => internalKey(session.db, key))) : wrongArity(name)
      case 'EXISTS':
        return n >= 2 ? this.exists(args.slice(1).map((key) => internalKey(session.db, key))) : wrongArity(name)
      case 'KEYS':
        return n === 2 ? this.keys(session.db, args[1].toString('latin1')) : wrongArity(name)
      case 'DBSIZE':
        return n === 1 ? this.dbsize(session.db) : wrongArity(name)
      case 'SELECT':
        return n === 2 ? select(session, args[1]) : wrongArity(name)
      case 'PING':
        return n === 1 ? PONG : n === 2 ? bulk(args[1]) : wrongArity(name)
      case 'ECHO':
        return n === 2 ? bulk(args[1]) : wrongArity(name)
      case 'INFO':
        return bulk(this.infoText(args[1]?.toString('latin1')))
      case 'GETV':
        return n === 2 ? this.getv(internalKey(session.db, args[1]), session.db === PIECE_DB) : wrongArity(name)
      case 'VERSION':
        return n === 2 ? this.version(internalKey(session.db, args[1])) : wrongArity(name)
      case 'CAS':
        if (n === 4 && session.db === PIECE_DB) this.pieceBytesIn += args[3].length
        return n === 4 ? this.cas(internalKey(session.db, args[1]), args[2], args[3]) : wrongArity(name)
      case 'CASDEL':
        return n === 3 ? this.cas(internalKey(session.db, args[1]), args[2], null) : wrongArity(name)
      case 'LOCATE':
        return n === 2 ? this.locate(internalKey(session.db, args[1])) : wrongArity(name)
      case 'XMAP':
        return n === 1 ? this.placementMap() : wrongArity(name)
      case 'XANNOUNCE':
        return n === 5 ? this.announce(args) : wrongArity(name)
      case 'COMMAND':
      case 'CONFIG':
        return array([])
      case 'CLIENT':
        return OK
      default:
        return error(`ERR unknown command '${args[0].toString('latin1').slice(0, 64)}'`)
    }
  }

  private get(key: Buffer, piece: boolean): Later {
    const later = new Later()
    this.replicas.readCb(key, (failure, result) => {
      if (failure) {
        later.fail(failure instanceof NoServerError || failure instanceof RespReplyError ? failure : new NoServerError())
        return
      }
      const value = result && !result.tomb ? result.value : null
      if (piece && value) this.pieceBytesOut += value.length
      later.settle(bulk(value))
    })
    return later
  }

  private set(key: Buffer, value: Buffer): Encoded | Later {
    if (value.length > MAX_VALUE_BYTES) return error(`ERR value too large (max ${MAX_VALUE_BYTES} bytes)`)
    const later = new Later()
    this.replicas.writeCb(key, {version: this.clock.next(), tomb: false, value}, (failure) => (failure ? later.fail(failure) : later.settle(OK)))
    return later
  }

  private read(key: Buffer): Promise<ReadResult | null> {
    return noServerOnFailure(this.replicas.read(key))
  }

  private newestVersion(key: Buffer): Promise<Versioned | null> {
    return noServerOnFailure(this.replicas.newestVersion(key))
  }

  private async del(keys: Buffer[]): Promise<Encoded> {
    const removed = await Promise.all(
      keys.map(async (key) => {
        let existed = false
        try {
          const current = await this.read(key)
          existed = current !== null && !current.tomb
          if (current && current.tomb) return 0
        } catch (failure) {
          if (!(failure instanceof NoServerError)) throw failure
        }
        await this.replicas.write(key, {version: this.clock.next(), tomb: true, value: null})
        return existed ? 1 : 0
      }),
    )
    return integer(removed.reduce<number>((sum, one) => sum + one, 0))
  }

  private async exists(keys: Buffer[]): Promise<Encoded> {
    const found = await Promise.all(
      keys.map(async (key) => {
        const result = await this.read(key)
        return result && !result.tomb ? 1 : 0
      }),
    )
    return integer(found.reduce<number>((sum, one) => sum + one, 0))
  }

  private async liveKeys(db: number, pattern: string): Promise<Buffer[]> {
    const regexp = globToRegExp(pattern)
    const prefix = DB_PREFIX[db]
    const merged = await this.replicas.scan(prefix, pattern, (rest) => regexp.test(rest.toString('latin1')))
    const out: Buffer[] = []
    for (const [id, entry] of merged) if (!entry.tomb) out.push(Buffer.from(id.slice(prefix.length), 'latin1'))
    return out
  }

  private async keys(db: number, pattern: string): Promise<Encoded> {
    try {
      globToRegExp(pattern)
    } catch {
      return error('ERR invalid pattern')
    }
    return array((await this.liveKeys(db, pattern)).map((key) => bulk(key)))
  }

  private async dbsize(db: number): Promise<Encoded> {
    return integer((await this.liveKeys(db, '*')).length)
  }

  private async getv(key: Buffer, piece: boolean): Promise<Encoded> {
    const result = await this.read(key)
    if (!result || result.tomb) return NULL_BULK
    if (piece && result.value) this.pieceBytesOut += result.value.length
    return array([bulk(result.value), integer(result.version)])
  }

  /** The current version of a live key (what GETV would return with the value), or null; no value moves. */
  private async version(key: Buffer): Promise<Encoded> {
    const current = await this.newestVersion(key)
    return current && !current.tomb ? integer(current.version) : NULL_BULK
  }

  /** Compare-and-set: applies only if the key's current version is `expected` (0: absent). */
  private cas(key: Buffer, expectedArg: Buffer, value: Buffer | null): Promise<Encoded> {
    const expected = Number(expectedArg.toString())
    if (!Number.isSafeInteger(expected) || expected < 0) return Promise.resolve(error('ERR expected version must be a non-negative integer'))
    return this.withLock(key, async () => {
      const current = await this.newestVersion(key)
      const version = current && !current.tomb ? current.version : 0
      if (version !== expected) return error(`${CASFAIL} current version is ${version}`)
      const next = this.clock.next()
      await this.replicas.write(key, {version: next, tomb: value === null, value})
      return integer(next)
    })
  }

  private locate(key: Buffer): Encoded {
    const out: Encoded[] = []
    for (const server of this.ring.preferenceFor(key)) {
      const member = this.members.members[server]
      if (member.state === 'up' && member.address) out.push(bulk(`${member.address.host}:${member.address.port}`))
    }
    return array(out)
  }

  /**
   * The placement map clients cache to move pieces straight to and from the
   * servers: `[version, servers, replicas, vnodes, [addr, state] per server]`.
   * The ring is fixed by the three numbers (src/kv/ring.ts computes the same
   * preference lists anywhere); the version changes whenever an address or
   * an up/down state does, so a client can tell that its copy is stale.
   */
  private placementMap(): Encoded {
    const members = this.members.members.map((member) => [member.address ? `${member.address.host}:${member.address.port}` : '', member.state] as const)
    const signature = members.map(([addr, state]) => `${addr}/${state}`).join(',')
    if (signature !== this.mapSignature) {
      this.mapSignature = signature
      this.mapVersion++
    }
    return array([
      integer(this.mapVersion),
      integer(this.ring.servers),
      integer(this.ring.replicas),
      integer(this.options.vnodes ?? 64),
      array(members.map(([addr, state]) => array([bulk(addr), bulk(state)]))),
    ])
  }

  private announce(args: Buffer[]): Encoded {
    const number = Number(args[1].toString())
    const port = Number(args[3].toString())
    if (!Number.isInteger(number) || number < 0 || number >= this.ring.servers) return error(`ERR server number must be 0..${this.ring.servers - 1}`)
    if (!Number.isInteger(port) || port < 1 || port > 65_535) return error('ERR bad port')
    this.members.heard({number, host: args[2].toString(), port, incarnation: args[4].toString()})
    return OK
  }

  private withLock<T>(key: Buffer, job: () => Promise<T>): Promise<T> {
    return this.locks.run(key.toString('latin1'), job)
  }
}

interface OrderState {
  byKey: Map<string, Later>
  all: Set<Later>
  barrier: Later | null
  /** The one command in flight when there is only one (not in `all` nor `byKey`), and its keys (null: every key). */
  solo: Later | null
  soloKeys: Buffer[] | null
}

/** The ordering ids of a command's keys (null: every key). */
function idsOf(keys: Buffer[] | null): string[] | null {
  return keys === null ? null : keys.length === 1 ? [keys[0].toString('latin1')] : keys.map((key) => key.toString('latin1'))
}

/** A read that failed for any reason but a server's own error reply means no replica could answer: NOSERVER. */
async function noServerOnFailure<T>(reading: Promise<T>): Promise<T> {
  try {
    return await reading
  } catch (failure) {
    if (failure instanceof NoServerError || failure instanceof RespReplyError) throw failure
    throw new NoServerError()
  }
}

const KEYED_FIRST = new Set(['GET', 'SET', 'GETV', 'VERSION', 'CAS', 'CASDEL', 'LOCATE'])
const KEYED_ALL = new Set(['DEL', 'EXISTS'])
const KEYLESS = new Set(['KEYS', 'DBSIZE'])

/** A command's name in upper case ('' for a name too long to be one of ours). */
function commandName(arg: Buffer): string {
  if (arg.length > 16) return ''
  const name = arg.toString('latin1')
  return KNOWN_UPPER.has(name) ? name : name.toUpperCase()
}

const KNOWN_UPPER = new Set(['GET', 'SET', 'DEL', 'EXISTS', 'GETV', 'VERSION', 'CAS', 'CASDEL', 'PING', 'SELECT', 'INFO'])

/** The keys a command touches: a list, null for "every key", undefined for none (runs at once). */
function keysOf(name: string, args: Buffer[]): Buffer[] | null | undefined {
  if (KEYED_FIRST.has(name)) return args.length >= 2 ? [args[1]] : undefined
  if (KEYED_ALL.has(name)) return args.slice(1)
  if (KEYLESS.has(name)) return null
  return undefined
}

function wrongArity(name: string): Encoded {
  return error(`ERR wrong number of arguments for '${name.toLowerCase()}' command`)
}

function select(session: Session, arg: Buffer): Encoded {
  const text = arg.toString('latin1')
  const db = Number(text)
  if (!/^\d+$/.test(text) || db >= DATABASES) return error('ERR DB index is out of range')
  session.db = db
  return OK
}
