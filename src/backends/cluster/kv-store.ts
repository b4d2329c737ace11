import {RespClient, RespConnectionError, RespReplyError, type RespValue} from '../../kv/client.js'
import {parseClusterInfo} from '../../kv/status.js'
import {ConflictError, TemporaryError} from '../errors.js'
import type {ClusterStore, Versioned} from './store.js'

/** Router connections per database: pieces move several at a time, so they get more than one. */
const CONNECTIONS_PER_DB = 4

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
  private turn = 0

  constructor(
    readonly router: string,
    private readonly capacityProbe?: () => Promise<{total: number | null; free: number | null}>,
  ) {}

  private async connectTo(address: string, db?: number): Promise<RespClient> {
    const client = await RespClient.connect({...parseAddress(address), connectTimeoutMs: 3000, idleTimeoutMs: 30_000})
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

  async set(db: number, key: string, value: Buffer): Promise<void> {
    await this.call(db, `writing ${key}`, 'SET', key, value)
  }

  async del(db: number, keys: string[]): Promise<void> {
    if (keys.length > 0) await this.call(db, `deleting ${keys[0]}`, 'DEL', ...keys)
  }

  async existsMany(db: number, keys: string[]): Promise<boolean[]> {
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
    const reply = await this.call(db, `locating ${key}`, 'LOCATE', key)
    return Array.isArray(reply) ? reply.map((address) => String(asBuffer(address))) : []
  }

  async readFrom(address: string, db: number, key: string): Promise<Buffer | null> {
    let pending = this.direct.get(address)
    let client = pending ? await pending.catch(() => undefined) : undefined
    if (!client || client.closed) {
      pending = this.connectTo(address)
      this.direct.set(address, pending)
      client = await pending
    }

    return asBuffer(await client.call('GET', `${db}:${key}`))
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
