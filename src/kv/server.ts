/**
 * A numbered storage server: LevelDB behind a RESP port. It answers the
 * router's internal commands (X…), direct reads (`GET <db>:<key>`) from
 * clients that located a key with the router's LOCATE, and heartbeats to the
 * router over reliable UDP.
 */
import {randomBytes} from 'node:crypto'
import {mkdir, stat, statfs} from 'node:fs/promises'
import net from 'node:net'

import {RespClient} from './client.js'
import {Later, serveConnection, type Session} from './connection.js'
import {globToRegExp} from './glob.js'
import {HeartbeatSender} from './heartbeat.js'
import {BufferPool, MAX_VALUE_BYTES, NULL_BULK, PONG, array, bulk, error, integer, simple, type Encoded} from './resp.js'
import {ServerStore, type KeyVersion, type StoredRecord} from './storage.js'
import {listenTcp} from '../net/listen.js'
import {HybridClock, LOGICAL_BITS} from './versions.js'

export interface KvServerOptions {
  /** This server's number, 0 … N-1. */
  number: number
  /** Address to listen on (default 127.0.0.1). */
  host?: string
  /** TCP port (0 picks a free one). */
  port?: number
  /** LevelDB folder. */
  dataDir: string
  /** The router's TCP address; its UDP heartbeat port has the same number. Omit to run unattached. */
  router?: {host: string; port: number}
  /** The address announced to the router (default: host and bound port). */
  advertise?: {host: string; port: number}
  /** Heartbeat period (default 1000 ms). */
  heartbeatMs?: number
  /** fsync every write batch before acknowledging it (default false: acknowledged writes survive SIGKILL; fsync once a second). */
  syncWrites?: boolean
  /** Tombstones older than this are purged (default 24 h). */
  tombstoneGraceMs?: number
  log?: (line: string) => void
}

/** How far ahead of this server's clock a version proposed with XPUT may be (clients on other machines). */
const MAX_PROPOSED_AHEAD_MS = 60_000

/** Values up to this size may stay in the store's cache, so their buffers are not recycled. */
const CACHED_VALUE_LIMIT = 64 * 1024

export class KvServer {
  readonly number: number
  readonly store: ServerStore
  private readonly options: KvServerOptions
  private readonly tcp = net.createServer((socket) => this.accept(socket))
  private readonly sockets = new Set<net.Socket>()
  private heartbeat: HeartbeatSender | null = null
  private timers: NodeJS.Timeout[] = []
  private bound: {host: string; port: number} | null = null
  private readonly incarnation = randomBytes(6).toString('hex')
  /** Versions of direct writes (XPUT): newer than anything this server holds for the key, and close to the router's clock. */
  private readonly clock = new HybridClock()
  /** Buffers for incoming pieces, recycled once XPUT has written them (see BufferPool). */
  private readonly pool = new BufferPool()
  /** Buffers for large values read for a reply (pieces), recycled once the socket has written them. */
  private readonly readPool = new BufferPool()

  constructor(options: KvServerOptions) {
    this.options = options
    this.number = options.number
    this.store = new ServerStore(options.dataDir, {syncWrites: options.syncWrites, inlineBlobWrites: true})
  }

  /** Where clients reach this server. */
  get address(): {host: string; port: number} {
    if (!this.bound) throw new Error('server is not started')
    return this.options.advertise ?? this.bound
  }

  async start(): Promise<void> {
    await mkdir(this.options.dataDir, {recursive: true})
    await this.store.open()
    const host = this.options.host ?? '127.0.0.1'
    this.bound = await listenTcp(this.tcp, this.options.port ?? 0, host)
    const grace = this.options.tombstoneGraceMs ?? 24 * 3600_000
    const purge = setInterval(() => void this.store.purgeTombstones(Date.now() - grace).catch(() => undefined), Math.min(60_000, Math.max(1000, grace / 2)))
    purge.unref()
    this.timers.push(purge)
    if (this.options.router) await this.attach(this.options.router)
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer)
    this.timers = []
    await this.heartbeat?.stop()
    this.heartbeat = null
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()))
    await this.store.close()
  }

  private async attach(router: {host: string; port: number}): Promise<void> {
    const {host, port} = this.address
    this.heartbeat = new HeartbeatSender({
      router,
      beat: {number: this.number, host, port, incarnation: this.incarnation},
      intervalMs: this.options.heartbeatMs ?? 1000,
    })
    await this.heartbeat.start()
    void this.announce(router)
  }

  /** Tells the router our number and address at once, rather than at the first heartbeat. */
  private async announce(router: {host: string; port: number}): Promise<void> {
    const {host, port} = this.address
    try {
      const client = await RespClient.connect({...router, connectTimeoutMs: 2000})
      try {
        await client.call('XANNOUNCE', this.number, host, port, this.incarnation)
        this.options.log?.(`announced to router ${router.host}:${router.port}`)
      } finally {
        client.close()
      }
    } catch (failure) {
      this.options.log?.(`cannot announce to router ${router.host}:${router.port} (${(failure as Error).message}); heartbeats will`)
    }
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    serveConnection(socket, (args, session) => this.dispatch(args, session), this.pool, (part) => this.readPool.release(part))
  }

  private dispatch(args: Buffer[], _session: Session): Encoded | Promise<Encoded> | Later {
    const raw = args[0].toString('latin1')
    const name = HOT.has(raw) ? raw : raw.toUpperCase()
    switch (name) {
      case 'XSET':
        return this.xset(args)
      case 'XPUT':
        if (args.length === 4) return this.xput(args[1], args[2], Number(args[3].toString('latin1')))
        return arity(args, 3) ?? this.xput(args[1], args[2])
      case 'XGET':
        return arity(args, 2) ?? this.xget(args[1])
      case 'XVER':
        return arity(args, 2) ?? this.xver(args[1])
      case 'GET':
        return arity(args, 2) ?? this.store.getValue(args[1], this.readPool).then((value) => bulk(value ?? null))
      case 'PING':
        return args.length > 1 ? bulk(args[1]) : PONG
      case 'SELECT':
        return simple('OK')
      case 'DBSIZE':
        return integer(this.store.liveKeys)
      case 'XDIGEST':
        return bulk(Buffer.from(this.store.digests()))
      case 'XBUCKETS':
        return this.store.scanBuckets(args.slice(1).map((arg) => Number(arg.toString()))).then(encodeHeaders)
      case 'XSCAN':
        return arity(args, 3) ?? this.xscan(args[1], args[2].toString('latin1'))
      case 'INFO':
        return this.info()
      case 'COMMAND':
        return array([])
      default:
        return error(`ERR unknown command '${args[0].toString('latin1').slice(0, 64)}'`)
    }
  }

  /**
   * `# Server` and `# Disk`: the filesystem under the data dir (its device
   * number lets a client count servers that share one disk once).
   */
  private async info(): Promise<Encoded> {
    const lines = ['# Server', 'role:kv-server', `number:${this.number}`, `keys:${this.store.liveKeys}`, '', '# Disk']
    try {
      const [fsStats, dirStats] = await Promise.all([statfs(this.options.dataDir), stat(this.options.dataDir)])
      lines.push(`disk_total:${fsStats.blocks * fsStats.bsize}`, `disk_free:${fsStats.bavail * fsStats.bsize}`, `disk_device:${dirStats.dev}`)
    } catch (failure) {
      lines.push(`disk_error:${(failure as Error).message.replace(/[\r\n]/g, ' ')}`)
    }
    return bulk(lines.join('\r\n') + '\r\n')
  }

  private xset(args: Buffer[]): Encoded | Later {
    if (args.length !== 5) return error('ERR wrong number of arguments for XSET')
    const version = parseDecimal(args[2])
    if (!Number.isSafeInteger(version) || version < 0) return error('ERR bad version')
    const tomb = args[3].length === 1 && args[3][0] === 0x31 // '1'
    const later = new Later()
    this.store.applyCb(args[1], version, tomb, tomb ? null : args[4], (failure, applied) => (failure ? later.fail(failure) : later.settle(integer(applied ? 1 : 0))))
    return later
  }

  /**
   * A direct write of an immutable, content-addressed value (a file piece)
   * from a client that placed it with the router's map. It gets a version
   * newer than whatever this server holds for the key (a tombstone of a gc,
   * or an older copy), so a write repeated after a gc listed the piece
   * changes its version and that gc's compare-and-set delete fails. The
   * client may propose one, the same for every replica of the piece: it is
   * taken when it is newer than what is held here and not ahead of this
   * server's clock by more than MAX_PROPOSED_AHEAD_MS, so the replicas of a
   * new piece hold the same version and anti-entropy finds nothing to copy.
   * Otherwise this server's clock, which follows the wall clock like the
   * router's, gives one.
   */
  private async xput(key: Buffer, value: Buffer, proposed?: number): Promise<Encoded> {
    if (value.length > MAX_VALUE_BYTES) return error(`ERR value too large (max ${MAX_VALUE_BYTES} bytes)`)
    try {
      if (proposed !== undefined && !(Number.isSafeInteger(proposed) && proposed > 0)) return error('ERR version is not a positive integer')
      const header = await this.store.getHeader(key)
      if (header) this.clock.observe(header.version)
      const held = header?.version ?? 0
      const usable = proposed !== undefined && proposed > held && proposed <= (Date.now() + MAX_PROPOSED_AHEAD_MS) * LOGICAL_BITS
      if (usable) this.clock.observe(proposed)
      await this.store.apply(key, usable ? proposed : this.clock.next(), false, value)
    } finally {
      // Written to its blob file (values this large are never cached): the buffer can take the next piece.
      if (value.length > CACHED_VALUE_LIMIT) this.pool.release(value)
    }
    return simple('OK')
  }

  /** `[version, tomb, value]`: at once from the cache (small values), else after a LevelDB read, large values into the read pool. */
  private xget(key: Buffer): Encoded | Promise<Encoded> {
    const cached = this.store.cachedRecord(key)
    if (cached) return encodeRecord(cached)
    return this.store.getRecord(key, this.readPool).then((record) => (record ? encodeRecord(record) : NULL_BULK))
  }

  private xver(key: Buffer): Encoded | Promise<Encoded> {
    const cached = this.store.cachedRecord(key)
    if (cached) return array([integer(cached.version), integer(cached.tomb ? 1 : 0)])
    return this.store.getHeader(key).then((header) => (header ? array([integer(header.version), integer(header.tomb ? 1 : 0)]) : NULL_BULK))
  }

  private async xscan(prefix: Buffer, pattern: string): Promise<Encoded> {
    let regexp: RegExp
    try {
      regexp = globToRegExp(pattern)
    } catch {
      return error('ERR invalid pattern')
    }
    return encodeHeaders(await this.store.scanPrefix(prefix, (rest) => regexp.test(rest.toString('latin1'))))
  }
}

/** The commands the router sends most, as it spells them (others are upper-cased first). */
const HOT = new Set(['XSET', 'XGET', 'XVER', 'GET', 'XPUT', 'PING'])

/** A decimal integer from its ASCII digits; NaN if it is not one. */
function parseDecimal(data: Buffer): number {
  if (data.length === 0 || data.length > 16) return NaN
  let n = 0
  for (let i = 0; i < data.length; i++) {
    const c = data[i] - 48
    if (c < 0 || c > 9) return NaN
    n = n * 10 + c
  }
  return n
}

function encodeRecord(record: StoredRecord): Encoded {
  return array([integer(record.version), integer(record.tomb ? 1 : 0), bulk(record.value)])
}

function arity(args: Buffer[], n: number): Encoded | undefined {
  return args.length === n ? undefined : error(`ERR wrong number of arguments for '${args[0].toString('latin1').toLowerCase()}' command`)
}

/** Flat array: key, version, tombstone flag, key, version, … */
function encodeHeaders(entries: KeyVersion[]): Encoded {
  const items: Encoded[] = []
  for (const entry of entries) items.push(bulk(entry.key), integer(entry.version), integer(entry.tomb ? 1 : 0))
  return array(items)
}
