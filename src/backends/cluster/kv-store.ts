import {RespClient, RespConnectionError, RespReplyError, type RespValue} from '../../kv/client.js'
import {BufferPool} from '../../kv/resp.js'
import {Ring} from '../../kv/ring.js'
import {HybridClock} from '../../kv/versions.js'
import {parseClusterInfo} from '../../kv/status.js'
import {ConflictError, TemporaryError} from '../errors.js'
import {allocShared, SHARED_LENT_BYTES} from './hasher.js'
import {PIECE_DB} from './manifest.js'
import type {ClusterStore, Versioned} from './store.js'

/** Router connections per database: pieces move several at a time, so they get more than one. */
const CONNECTIONS_PER_DB = 4

/** Connections to each storage server for direct piece I/O (pipelined; two keep one large reply from holding up the rest). */
const CONNECTIONS_PER_SERVER = 2

/** A cached placement map older than this is refreshed in the background (membership changes show within a second). */
const MAP_REFRESH_MS = 1000

/** The router's placement map (XMAP), as the client caches it. */
export interface PlacementMap {
  version: number
  ring: Ring
  /** Per server number: its address (empty before it announced) and whether the router sees it up. */
  members: Array<{addr: string; up: boolean}>
  fetchedAt: number
}

/** Parses an XMAP reply; null when the router does not speak it (an older router). */
function parsePlacementMap(reply: RespValue, rings: Map<string, Ring>): PlacementMap | null {
  if (!Array.isArray(reply) || reply.length < 5 || !Array.isArray(reply[4])) return null
  const [version, servers, replicas, vnodes] = reply.slice(0, 4).map(Number)
  if (![version, servers, replicas, vnodes].every(Number.isSafeInteger) || servers < 1) return null
  const shape = `${servers}/${replicas}/${vnodes}`
  let ring = rings.get(shape)
  if (!ring) rings.set(shape, (ring = new Ring(servers, replicas, vnodes)))
  const members = (reply[4] as RespValue[]).map((entry) => {
    const [addr, state] = Array.isArray(entry) ? entry.map((part) => String(asBufferOrEmpty(part))) : ['', 'down']
    return {addr, up: state === 'up' && addr !== ''}
  })
  return {version, ring, members, fetchedAt: Date.now()}
}

const asBufferOrEmpty = (value: RespValue): Buffer => (Buffer.isBuffer(value) ? value : Buffer.from(value === null ? '' : String(value)))

/** Parses `host:port`. */
export function parseAddress(address: string): {host: string; port: number} {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address)
  const port = Number(match?.[2])
  if (!match || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new TemporaryError(`bad cluster address "${address}"; expected host:port`)
  }

  return {host: match[1], port}
}

/** Turns a RESP client's errors into the typed errors: no server and connection trouble are temporary. */
function mapError(error: unknown, what: string): unknown {
  if (error instanceof RespConnectionError) return new TemporaryError(`cluster unavailable: ${what}: ${error.message}`, {cause: error})
  if (error instanceof RespReplyError && error.code === 'NOSPACE') {
    return new ConflictError("no space left on a cluster server's disk", 'no-space', {backendCode: 'NOSPACE'})
  }
  if (error instanceof RespReplyError && error.code === 'NOSERVER') {
    return new TemporaryError(`cluster unavailable: ${what}: no server holds this key's range`, {backendCode: 'NOSERVER'})
  }

  return error
}

const asBuffer = (value: RespValue): Buffer | null => (value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(String(value)))

/**
 * The cluster backend's view of the key-value layer, over RESP: a few
 * pipelined connections to the router per database, and direct connections
 * to servers for piece reads.
 */
export class RespClusterStore implements ClusterStore {
  private readonly pools = new Map<number, Promise<RespClient>[]>()
  private readonly direct = new Map<string, Promise<RespClient>>()
  /** Pieces read straight from servers land in these recycled buffers (see recycle()). */
  private readonly piecePool = new BufferPool(256 * 1024, 24, allocShared, SHARED_LENT_BYTES)
  private turn = 0
  private map: PlacementMap | null = null
  private mapLoading: Promise<PlacementMap | null> | null = null
  /** false once the router has shown it has no XMAP: everything then goes through it, as before. */
  private mapSupported = true
  private readonly rings = new Map<string, Ring>()
  /** Versions proposed for direct piece writes (see setDirect); it observes every version XVER shows. */
  private readonly clock = new HybridClock()
  /** Servers that refused XPUT's version argument (an older server): written without it. */
  private readonly unversioned = new Set<string>()

  constructor(
    readonly router: string,
    private readonly capacityProbe?: () => Promise<{total: number | null; free: number | null}>,
  ) {}

  private async connectTo(address: string, db?: number, pool?: BufferPool): Promise<RespClient> {
    const client = await RespClient.connect({...parseAddress(address), connectTimeoutMs: 3000, idleTimeoutMs: 30_000, pool})
    if (db !== undefined) await client.call('SELECT', db)
    return client
  }

  /** A live router connection for `db`, round robin; a dead one is replaced. */
  private async routerClient(db: number): Promise<RespClient> {
    let pool = this.pools.get(db)
    if (!pool) {
      pool = []
      this.pools.set(db, pool)
    }

    const slot = this.turn++ % CONNECTIONS_PER_DB
    let pending = pool[slot]
    if (pending) {
      const client = await pending.catch(() => undefined)
      if (client && !client.closed) return client
    }

    pending = this.connectTo(this.router, db)
    pool[slot] = pending
    pending.catch(() => {
      if (pool[slot] === pending) delete pool[slot]
    })
    return pending
  }

  private async call(db: number, what: string, ...args: Array<string | number | Buffer>): Promise<RespValue> {
    try {
      return await (await this.routerClient(db)).call(...args)
    } catch (error) {
      throw mapError(error, what)
    }
  }

  async getVersioned(db: number, key: string): Promise<Versioned | null> {
    const reply = await this.call(db, `reading ${key}`, 'GETV', key)
    if (!Array.isArray(reply)) return null
    return {value: asBuffer(reply[0]) ?? Buffer.alloc(0), version: String(reply[1])}
  }

  async currentVersion(db: number, key: string): Promise<string | null> {
    const reply = await this.call(db, `reading the version of ${key}`, 'VERSION', key)
    return reply === null ? null : String(reply)
  }

  async compareAndSet(db: number, key: string, expected: string | null, value: Buffer | null): Promise<string | null> {
    try {
      const version =
        value === null
          ? await this.call(db, `deleting ${key}`, 'CASDEL', key, expected ?? '0')
          : await this.call(db, `writing ${key}`, 'CAS', key, expected ?? '0', value)
      return String(version)
    } catch (error) {
      if (error instanceof RespReplyError && error.code === 'CASFAIL') return null
      throw error
    }
  }

  async versionOf(db: number, key: string): Promise<{version: string; size: number} | null> {
    const found = await this.getVersioned(db, key)
    return found && {version: found.version, size: found.value.length}
  }

  async get(db: number, key: string): Promise<Buffer | null> {
    return asBuffer(await this.call(db, `reading ${key}`, 'GET', key))
  }

  /**
   * Pieces (database 2) go straight to every server of their preference
   * list in parallel when the cached map shows them all up; a server that
   * is down in the map or cannot be reached gets the piece through the
   * router instead, which writes the live replicas and keeps a hint for the
   * others. Everything else goes through the router.
   */
  async set(db: number, key: string, value: Buffer): Promise<void> {
    if (db === PIECE_DB && (await this.setDirect(key, value))) return
    await this.call(db, `writing ${key}`, 'SET', key, value)
  }

  /** Resolves true when every replica stored the piece; false when the router must take it. */
  private async setDirect(key: string, value: Buffer): Promise<boolean> {
    const targets = await this.replicasOf(key, false)
    if (!targets) return false
    const internal = `${PIECE_DB}:${key}`
    // One proposed version for every replica: where none holds the piece,
    // all of them store it under the same version, so their digests agree
    // and anti-entropy has nothing to copy (each server's own clock gave
    // each replica a different version, and anti-entropy then copied every
    // piece of every upload once more, through the router).
    const version = String(this.clock.next())
    const results = await Promise.allSettled(targets.map((address) => this.put(address, internal, value, version)))
    let stored = true
    for (const result of results) {
      if (result.status === 'fulfilled') continue
      if (result.reason instanceof RespReplyError) throw mapError(result.reason, `writing ${key}`)
      stored = false
    }

    if (!stored) this.invalidateMap()
    return stored
  }

  /** XPUT to one server, with the proposed version unless that server is known not to take it. */
  private async put(address: string, internal: string, value: Buffer, version: string): Promise<RespValue> {
    const client = await this.serverClient(address)
    if (this.unversioned.has(address)) return client.call('XPUT', internal, value)
    try {
      return await client.call('XPUT', internal, value, version)
    } catch (error) {
      if (!(error instanceof RespReplyError && /wrong number of arguments/i.test(error.message))) throw error
      this.unversioned.add(address)
      return client.call('XPUT', internal, value)
    }
  }

  /**
   * The cached placement map, fetched on first use and refreshed in the
   * background once it is older than a second; null when the router has no
   * XMAP or cannot be asked (the caller then goes through the router).
   */
  async placement(): Promise<PlacementMap | null> {
    if (!this.mapSupported) return null
    const map = this.map
    if (map && Date.now() - map.fetchedAt < MAP_REFRESH_MS) return map
    this.mapLoading ??= this.loadMap().finally(() => (this.mapLoading = null))
    return map ?? this.mapLoading
  }

  private async loadMap(): Promise<PlacementMap | null> {
    try {
      const reply = await (await this.routerClient(0)).call('XMAP')
      const map = parsePlacementMap(reply, this.rings)
      if (!map) this.mapSupported = false
      this.map = map
      return map
    } catch (error) {
      if (error instanceof RespReplyError) this.mapSupported = false
      return null
    }
  }

  /** Forgets the map after a server failed us, so the next piece asks the router again. */
  private invalidateMap(): void {
    if (this.map) this.map = {...this.map, fetchedAt: 0}
  }

  /**
   * Addresses of a piece's replicas from the map: with `liveOnly`, those up
   * (possibly none); otherwise all of them, or null if any is down or unknown.
   */
  private async replicasOf(key: string, liveOnly: boolean): Promise<string[] | null> {
    const map = await this.placement()
    if (!map) return null
    const out: string[] = []
    for (const server of map.ring.preferenceFor(Buffer.from(`${PIECE_DB}:${key}`))) {
      const member = map.members[server]
      if (member?.up) out.push(member.addr)
      else if (!liveOnly) return null
    }

    return out
  }

  /** A direct connection to a storage server, round robin over a few; a dead one is replaced. */
  private async serverClient(address: string): Promise<RespClient> {
    const slot = `${address}#${this.turn++ % CONNECTIONS_PER_SERVER}`
    let pending = this.direct.get(slot)
    const client = pending ? await pending.catch(() => undefined) : undefined
    if (client && !client.closed) return client
    pending = this.connectTo(address, undefined, this.piecePool)
    this.direct.set(slot, pending)
    pending.catch(() => {
      if (this.direct.get(slot) === pending) this.direct.delete(slot)
    })
    return pending
  }

  async del(db: number, keys: string[]): Promise<void> {
    if (keys.length > 0) await this.call(db, `deleting ${keys[0]}`, 'DEL', ...keys)
  }

  async existsMany(db: number, keys: string[]): Promise<boolean[]> {
    if (db === PIECE_DB) {
      const direct = await Promise.all(keys.map((key) => this.existsDirect(key)))
      const unknown = keys.filter((_, i) => direct[i] === null)
      const fromRouter = unknown.length > 0 ? await this.existsThroughRouter(db, unknown) : []
      return direct.map((found) => found ?? fromRouter.shift()!)
    }

    return this.existsThroughRouter(db, keys)
  }

  /**
   * Whether a piece exists, asking its live replicas for versions only
   * (newest wins, a tombstone means gone); null when the map shows none up
   * or none answers, so the router decides.
   */
  private async existsDirect(key: string): Promise<boolean | null> {
    const targets = await this.replicasOf(key, true)
    if (!targets || targets.length === 0) return null
    const internal = `${PIECE_DB}:${key}`
    const replies = await Promise.allSettled(targets.map(async (address) => (await this.serverClient(address)).call('XVER', internal)))
    let answered = false
    let newest: {version: number; tomb: boolean} | null = null
    for (const reply of replies) {
      if (reply.status !== 'fulfilled') continue
      answered = true
      const value = reply.value
      if (!Array.isArray(value) || value.length < 2) continue
      const version = Number(value[0])
      this.clock.observe(version)
      if (!newest || version > newest.version) newest = {version, tomb: Number(value[1]) === 1}
    }

    if (!answered) {
      this.invalidateMap()
      return null
    }

    return newest !== null && !newest.tomb
  }

  private async existsThroughRouter(db: number, keys: string[]): Promise<boolean[]> {
    const client = await this.routerClient(db).catch((error) => {
      throw mapError(error, 'checking pieces')
    })
    const replies = await Promise.all(keys.map((key) => client.call('EXISTS', key))).catch((error) => {
      throw mapError(error, 'checking pieces')
    })
    return replies.map((reply) => reply === 1)
  }

  async keys(db: number, pattern: string): Promise<string[]> {
    const reply = await this.call(db, `listing ${pattern}`, 'KEYS', pattern)
    return Array.isArray(reply) ? reply.map((key) => String(asBuffer(key))) : []
  }

  async locate(db: number, key: string): Promise<string[]> {
    if (db === PIECE_DB) {
      const live = await this.replicasOf(key, true)
      if (live && live.length > 0) return live
    }

    const reply = await this.call(db, `locating ${key}`, 'LOCATE', key)
    return Array.isArray(reply) ? reply.map((address) => String(asBuffer(address))) : []
  }

  async readFrom(address: string, db: number, key: string): Promise<Buffer | null> {
    try {
      return asBuffer(await (await this.serverClient(address)).call('GET', `${db}:${key}`))
    } catch (error) {
      if (error instanceof RespConnectionError) this.invalidateMap()
      throw error
    }
  }

  /** Takes back a value readFrom() returned, once nothing uses it any more. */
  recycle(buffer: Buffer): void {
    this.piecePool.release(buffer)
  }

  capacity(): Promise<{total: number | null; free: number | null}> {
    return this.capacityProbe ? this.capacityProbe() : this.serversDisk()
  }

  /**
   * The disks of the servers that are up, from each one's INFO `# Disk`
   * section; servers on one filesystem (same host and device) count once.
   * Nulls when no server reports.
   */
  private async serversDisk(): Promise<{total: number | null; free: number | null}> {
    const view = parseClusterInfo(String(asBuffer(await this.call(0, 'reading the cluster view', 'INFO', 'cluster'))))
    const addresses = view.members.filter((member) => member.state === 'up' && member.addr).map((member) => member.addr)
    const disks = new Map<string, {total: number; free: number}>()
    await Promise.all(
      addresses.map(async (address) => {
        let client: RespClient | undefined
        try {
          client = await this.connectTo(address)
          const text = String(asBuffer(await client.call('INFO')))
          const field = (name: string) => new RegExp(`^${name}:(\\d+)\\s*$`, 'm').exec(text)?.[1]
          const total = Number(field('disk_total'))
          const free = Number(field('disk_free'))
          if (Number.isFinite(total) && Number.isFinite(free)) {
            disks.set(`${parseAddress(address).host}#${field('disk_device') ?? address}`, {total, free})
          }
        } catch {
          // A server that cannot say is left out of the sum.
        } finally {
          client?.close()
        }
      }),
    )
    if (disks.size === 0) return {total: null, free: null}
    let total = 0
    let free = 0
    for (const disk of disks.values()) {
      total += disk.total
      free += disk.free
    }

    return {total, free}
  }

  async close(): Promise<void> {
    const all = [...[...this.pools.values()].flat(), ...this.direct.values()]
    this.pools.clear()
    this.direct.clear()
    for (const pending of all) (await pending.catch(() => undefined))?.close()
  }
}
