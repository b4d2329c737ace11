/**
 * The embedded mode's store: the `ClusterStore` operations answered by the
 * storage engine (src/kv/storage.ts) inside this process, with no router and
 * no socket. The data is the one-server layout the embedded router and
 * server kept before (internal keys `<db>:<key>` in `server0/`), so data dirs
 * written by either read the same.
 *
 * Versions come from a hybrid clock started past every version on disk (and
 * past the old router's saved mark), so they never go backwards across
 * processes. Compare-and-set is serialised per key inside this process; only
 * one process opens the data dir at a time (LevelDB's own lock), and every
 * other one goes through it (shared.ts).
 */
import {statfs} from 'node:fs/promises'

import {BLOB_MIN_BYTES} from '../../kv/blobs.js'
import {globToRegExp} from '../../kv/glob.js'
import {KeyLock} from '../../kv/key-lock.js'
import type {BufferPool} from '../../kv/resp.js'
import type {ClusterStatus} from '../../kv/status.js'
import type {ServerStore} from '../../kv/storage.js'
import {HybridClock} from '../../kv/versions.js'
import {ConflictError} from '../errors.js'
import type {ClusterStore, Versioned} from './store.js'

/** The address `locate` hands out for this process's own storage. */
export const LOCAL_ADDRESS = 'embedded'

const DB_PREFIX = Array.from({length: 16}, (_, db) => Buffer.from(`${db}:`))

function internalKey(db: number, key: string): Buffer {
  const prefix = DB_PREFIX[db]
  if (!prefix) throw new RangeError(`database ${db} is out of range`)
  const out = Buffer.allocUnsafe(prefix.length + Buffer.byteLength(key))
  prefix.copy(out)
  out.write(key, prefix.length)
  return out
}

/** A disk that filled up, as the typed error the CLI maps to its exit code. */
function mapStorageError(error: unknown): unknown {
  if (error instanceof Error && /^NOSPACE /.test(error.message)) {
    return new ConflictError("no space left on the embedded cluster's disk", 'no-space', {backendCode: 'NOSPACE', cause: error})
  }
  return error
}

export class LocalClusterStore implements ClusterStore {
  private readonly clock = new HybridClock()
  private readonly locks = new KeyLock()
  /** The clock started past every version on disk: set before the first write. */
  private clockStarted: Promise<void> | null = null

  constructor(
    readonly engine: ServerStore,
    private readonly dataDir: string,
    /** Versions at or below this were issued before (by the old router): the clock starts past it. */
    private readonly observed = 0,
  ) {}

  /**
   * The engine may be opened with its header scan deferred (embedded.ts):
   * the highest version on disk is known only after it, so the first write
   * waits for the scan, and a process that only reads never runs it.
   */
  private startClock(): Promise<void> {
    this.clockStarted ??= this.engine.scan().then(() => this.clock.observe(Math.max(this.engine.highestVersion, this.observed)))
    return this.clockStarted
  }

  private async write(key: Buffer, tomb: boolean, value: Buffer | null): Promise<number> {
    await this.startClock()
    const version = this.clock.next()
    // The engine may keep a small value by reference (its cache), while a
    // caller may reuse its buffer once the write resolves (uploadPieces'
    // pooled piece buffers): a small value is copied, a blob is not kept.
    const kept = value && value.length < BLOB_MIN_BYTES ? Buffer.from(value) : value
    try {
      await this.engine.apply(key, version, tomb, kept)
    } catch (error) {
      throw mapStorageError(error)
    }
    return version
  }

  private withLock<T>(id: string, job: () => Promise<T>): Promise<T> {
    return this.locks.run(id, job)
  }

  async getVersioned(db: number, key: string): Promise<Versioned | null> {
    const record = await this.engine.getRecord(internalKey(db, key))
    if (!record || record.tomb) return null
    return {value: record.value ?? Buffer.alloc(0), version: String(record.version)}
  }

  async currentVersion(db: number, key: string): Promise<string | null> {
    const header = await this.engine.getHeader(internalKey(db, key))
    return header && !header.tomb ? String(header.version) : null
  }

  compareAndSet(db: number, key: string, expected: string | null, value: Buffer | null): Promise<string | null> {
    const internal = internalKey(db, key)
    return this.withLock(internal.toString('latin1'), async () => {
      const header = await this.engine.getHeader(internal)
      const current = header && !header.tomb ? String(header.version) : null
      if (current !== expected) return null
      return String(await this.write(internal, value === null, value))
    })
  }

  async versionOf(db: number, key: string): Promise<{version: string; size: number} | null> {
    const found = await this.getVersioned(db, key)
    return found && {version: found.version, size: found.value.length}
  }

  async get(db: number, key: string): Promise<Buffer | null> {
    const record = await this.engine.getRecord(internalKey(db, key))
    return record && !record.tomb ? (record.value ?? Buffer.alloc(0)) : null
  }

  async set(db: number, key: string, value: Buffer): Promise<void> {
    await this.write(internalKey(db, key), false, value)
  }

  async del(db: number, keys: string[]): Promise<void> {
    await Promise.all(
      keys.map(async (key) => {
        const internal = internalKey(db, key)
        const header = await this.engine.getHeader(internal)
        if (header && !header.tomb) await this.write(internal, true, null)
      }),
    )
  }

  existsMany(db: number, keys: string[]): Promise<boolean[]> {
    return Promise.all(
      keys.map(async (key) => {
        const header = await this.engine.getHeader(internalKey(db, key))
        return header !== null && !header.tomb
      }),
    )
  }

  async keys(db: number, pattern: string): Promise<string[]> {
    const regexp = globToRegExp(pattern)
    const prefix = DB_PREFIX[db]
    const found = await this.engine.scanPrefix(prefix, (rest) => regexp.test(rest.toString('latin1')))
    return found.filter((entry) => !entry.tomb).map((entry) => entry.key.subarray(prefix.length).toString())
  }

  async locate(db: number, key: string): Promise<string[]> {
    return (await this.existsMany(db, [key]))[0] ? [LOCAL_ADDRESS] : []
  }

  readFrom(_address: string, db: number, key: string): Promise<Buffer | null> {
    return this.get(db, key)
  }

  /** Like get(), a large value (a piece) read into a buffer from `pool`, which the caller may hand back once done with it. */
  async getPooled(db: number, key: string, pool: BufferPool): Promise<Buffer | null> {
    const record = await this.engine.getRecord(internalKey(db, key), pool)
    return record && !record.tomb ? (record.value ?? Buffer.alloc(0)) : null
  }

  async capacity(): Promise<{total: number | null; free: number | null}> {
    try {
      const disk = await statfs(this.dataDir)
      return {total: disk.blocks * disk.bsize, free: disk.bavail * disk.bsize}
    } catch {
      return {total: null, free: null}
    }
  }

  /** The `cluster status` view of the embedded mode: one server, this process, always up. */
  async status(holder: string): Promise<ClusterStatus> {
    await this.engine.scan()
    const {total, free} = await this.capacity()
    return {
      servers: 1,
      servers_up: 1,
      replicas: 1,
      hints_pending: 0,
      buffered_writes: 0,
      members: [{number: 0, addr: holder, state: 'up', last_heartbeat_ms: 0, hints: 0, keys: this.engine.liveKeys, disk_total: total, disk_free: free}],
    }
  }

  /** Drops tombstones older than `graceMs` (deleted keys' headers), as a cluster server does. */
  purgeTombstones(graceMs: number): Promise<number> {
    return this.engine.purgeTombstones(Date.now() - graceMs)
  }

  async close(): Promise<void> {
    // The engine belongs to the holder (shared.ts), which closes it.
  }
}
