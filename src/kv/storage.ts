/**
 * A storage server's LevelDB layout, with group commit and per-bucket digests.
 *
 * Keys (internal key = `<db>:<user key>`):
 *   'v' + bucket (2 bytes) + internal key  →  header (tombstone flag, version)
 *   'd' + internal key                     →  value (live keys only)
 * Headers are grouped by bucket so anti-entropy can list one bucket with a
 * range scan; values sit apart so a direct GET is one lookup.
 *
 * Writes queue up and are committed together in one batch; the next batch
 * starts when the previous one is written. A write is answered only after its
 * batch has been handed to the kernel: LevelDB appends the batch to its log
 * with write(2) before the call returns, so a SIGKILL of this process loses
 * nothing acknowledged. With `syncWrites` every batch is also fsync'd (safe
 * against an OS crash or power loss, at the cost of one fsync per batch);
 * without it the log is fsync'd once a second, like Redis's
 * `appendfsync everysec`.
 *
 * Recently used records are kept in a small write-through cache, because a
 * LevelDB read is a round trip through libuv's thread pool.
 */
import {ClassicLevel} from 'classic-level'

import {BUCKETS, bucketOf, murmur3} from './ring.js'
import {HEADER_BYTES, decodeHeader, encodeHeader, newer, versionTime, type Versioned} from './versions.js'

export interface StoredRecord extends Versioned {
  value: Buffer | null
}

export interface KeyVersion extends Versioned {
  key: Buffer
}

interface QueuedWrite extends Versioned {
  key: Buffer
  value: Buffer | null
  resolve: (applied: boolean) => void
  reject: (error: Error) => void
}

type Db = ClassicLevel<Buffer, Buffer>

export function headerKey(key: Buffer, bucket = bucketOf(key)): Buffer {
  const out = Buffer.allocUnsafe(3 + key.length)
  out[0] = 0x76 // 'v'
  out.writeUInt16BE(bucket, 1)
  key.copy(out, 3)
  return out
}

export function valueKey(key: Buffer): Buffer {
  return Buffer.concat([Buffer.from('d'), key])
}

/** A digest contribution of one key at one version: 64 bits as two uint32. */
function fingerprint(key: Buffer, entry: Versioned): [number, number] {
  const lo = entry.version % 0x1_0000_0000
  const hi = Math.floor(entry.version / 0x1_0000_0000)
  const flag = entry.tomb ? 0x5bd1e995 : 0
  return [murmur3(key, lo ^ flag), murmur3(key, (hi * 31) ^ lo ^ 0x9747b28c ^ flag)]
}

export interface ServerStoreOptions {
  /** fsync every batch before acknowledging it (default false: fsync once a second). */
  syncWrites?: boolean
  /** Bytes of values kept in the read cache (default 32 MiB). */
  cacheBytes?: number
}

const CACHEABLE_VALUE_BYTES = 64 * 1024

export class ServerStore {
  readonly db: Db
  private readonly sync: boolean
  private readonly cache = new Map<string, StoredRecord>()
  private cacheBytes = 0
  private readonly cacheLimit: number
  private fsyncTimer: NodeJS.Timeout | null = null
  private dirty = false
  private readonly digest = new Uint32Array(BUCKETS * 2)
  private queue: QueuedWrite[] = []
  private chain: Promise<void> = Promise.resolve()
  private flushScheduled = false
  private live = 0

  constructor(dir: string, options: ServerStoreOptions = {}) {
    // Values are mostly file pieces of up to 1 MiB, usually incompressible:
    // a larger memtable and larger table files mean fewer, cheaper
    // compactions for them (measured: about 15% more upload throughput), and
    // Snappy would only spend CPU failing to shrink them.
    this.db = new ClassicLevel<Buffer, Buffer>(dir, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      writeBufferSize: 32 * 1024 * 1024,
      maxFileSize: 32 * 1024 * 1024,
      compression: false,
    })
    this.sync = options.syncWrites ?? false
    this.cacheLimit = options.cacheBytes ?? 32 * 1024 * 1024
  }

  /** Opens the database and computes the digests and key count from it. */
  async open(): Promise<void> {
    await this.db.open()
    for await (const [hkey, header] of this.db.iterator({gte: Buffer.from('v'), lt: Buffer.from('w')})) {
      const key = hkey.subarray(3)
      const entry = decodeHeader(header)
      this.xorDigest(hkey.readUInt16BE(1), key, entry)
      if (!entry.tomb) this.live++
    }
    if (!this.sync) {
      this.fsyncTimer = setInterval(() => {
        if (!this.dirty) return
        this.dirty = false
        this.chain = this.chain.then(() => this.db.put(Buffer.from('s'), Buffer.alloc(0), {sync: true}).catch(() => undefined))
      }, 1000)
      this.fsyncTimer.unref()
    }
  }

  async close(): Promise<void> {
    if (this.fsyncTimer) clearInterval(this.fsyncTimer)
    await this.chain
    if (this.dirty) await this.db.put(Buffer.from('s'), Buffer.alloc(0), {sync: true})
    await this.db.close()
  }

  /** Live keys on this server. */
  get liveKeys(): number {
    return this.live
  }

  /** The digests of every bucket, 8 bytes each. */
  digests(): Buffer {
    return Buffer.from(this.digest.buffer, this.digest.byteOffset, this.digest.byteLength)
  }

  async getValue(key: Buffer): Promise<Buffer | undefined> {
    const cached = this.cache.get(key.toString('latin1'))
    if (cached) return cached.value ?? undefined
    return this.db.get(valueKey(key))
  }

  async getHeader(key: Buffer): Promise<Versioned | null> {
    const cached = this.cache.get(key.toString('latin1'))
    if (cached) return cached
    const header = await this.db.get(headerKey(key))
    return header ? decodeHeader(header) : null
  }

  async getRecord(key: Buffer): Promise<StoredRecord | null> {
    const id = key.toString('latin1')
    const cached = this.cache.get(id)
    if (cached) return cached
    const [header, value] = await this.db.getMany([headerKey(key), valueKey(key)])
    if (!header) return null
    const entry = decodeHeader(header)
    const record = {...entry, value: entry.tomb ? null : (value ?? Buffer.alloc(0))}
    this.remember(id, record)
    return record
  }

  private remember(id: string, record: StoredRecord | null): void {
    const old = this.cache.get(id)
    if (old) {
      this.cache.delete(id)
      this.cacheBytes -= id.length + (old.value?.length ?? 0)
    }
    if (!record || (record.value?.length ?? 0) > CACHEABLE_VALUE_BYTES) return
    this.cache.set(id, record)
    this.cacheBytes += id.length + (record.value?.length ?? 0)
    while (this.cacheBytes > this.cacheLimit || this.cache.size > 100_000) {
      const [oldest, held] = this.cache.entries().next().value as [string, StoredRecord]
      this.cache.delete(oldest)
      this.cacheBytes -= oldest.length + (held.value?.length ?? 0)
    }
  }

  /** Stores a version if it is newer than what is held; resolves true if applied. Durable when it resolves. */
  apply(key: Buffer, version: number, tomb: boolean, value: Buffer | null): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({key, version, tomb, value: tomb ? null : value, resolve, reject})
      if (!this.flushScheduled) {
        this.flushScheduled = true
        this.chain = this.chain.then(() => this.flush())
      }
    })
  }

  /** Headers of every key in the given buckets. */
  async scanBuckets(buckets: number[]): Promise<KeyVersion[]> {
    const out: KeyVersion[] = []
    for (const bucket of buckets) {
      const gte = Buffer.from([0x76, bucket >> 8, bucket & 0xff])
      const lt = Buffer.from([0x76, (bucket + 1) >> 8, (bucket + 1) & 0xff])
      for await (const [hkey, header] of this.db.iterator({gte, lt})) out.push({key: hkey.subarray(3), ...decodeHeader(header)})
    }
    return out
  }

  /** Headers of every key that starts with `prefix` and whose rest satisfies `match`. */
  async scanPrefix(prefix: Buffer, match: (rest: Buffer) => boolean): Promise<KeyVersion[]> {
    const out: KeyVersion[] = []
    for await (const [hkey, header] of this.db.iterator({gte: Buffer.from('v'), lt: Buffer.from('w')})) {
      const key = hkey.subarray(3)
      if (key.length >= prefix.length && key.subarray(0, prefix.length).equals(prefix) && match(key.subarray(prefix.length))) {
        out.push({key, ...decodeHeader(header)})
      }
    }
    return out
  }

  /** Drops tombstones issued before `before` (ms since epoch). Returns how many. */
  purgeTombstones(before: number): Promise<number> {
    const job = this.chain.then(async () => {
      const ops: Array<{type: 'del'; key: Buffer}> = []
      for await (const [hkey, header] of this.db.iterator({gte: Buffer.from('v'), lt: Buffer.from('w')})) {
        const entry = decodeHeader(header)
        if (entry.tomb && versionTime(entry.version) < before) {
          ops.push({type: 'del', key: hkey})
          this.remember(hkey.subarray(3).toString('latin1'), null)
          this.xorDigest(hkey.readUInt16BE(1), hkey.subarray(3), entry)
        }
      }
      if (ops.length > 0) await this.db.batch(ops, {sync: true})
      return ops.length
    })
    this.chain = job.then(
      () => undefined,
      () => undefined,
    )
    return job
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false
    const writes = this.queue
    this.queue = []
    if (writes.length === 0) return
    try {
      const keys = new Map<string, {key: Buffer; bucket: number; current: Versioned | null}>()
      for (const write of writes) {
        const id = write.key.toString('latin1')
        if (!keys.has(id)) keys.set(id, {key: write.key, bucket: bucketOf(write.key), current: null})
      }
      const unknown = [...keys.values()].filter((entry) => {
        const cached = this.cache.get(entry.key.toString('latin1'))
        if (cached) entry.current = {version: cached.version, tomb: cached.tomb}
        return !cached
      })
      if (unknown.length > 0) {
        const headers = await this.db.getMany(unknown.map((entry) => headerKey(entry.key, entry.bucket)))
        unknown.forEach((entry, i) => (entry.current = headers[i] && headers[i].length === HEADER_BYTES ? decodeHeader(headers[i]) : null))
      }
      // A chained batch: cheaper per operation than the array form, whose
      // per-op normalisation was the largest cost of a small write here.
      const batch = this.db.batch()
      const applied: boolean[] = []
      for (const write of writes) {
        const entry = keys.get(write.key.toString('latin1'))!
        if (!newer(write, entry.current)) {
          applied.push(false)
          continue
        }
        if (entry.current) {
          this.xorDigest(entry.bucket, entry.key, entry.current)
          if (!entry.current.tomb) this.live--
        }
        this.xorDigest(entry.bucket, entry.key, write)
        if (!write.tomb) this.live++
        entry.current = {version: write.version, tomb: write.tomb}
        batch.put(headerKey(entry.key, entry.bucket), encodeHeader(write.version, write.tomb))
        if (write.tomb) batch.del(valueKey(entry.key))
        else batch.put(valueKey(entry.key), write.value ?? Buffer.alloc(0))
        applied.push(true)
      }
      if (batch.length > 0) await batch.write({sync: this.sync})
      else await batch.close()
      this.dirty = true
      writes.forEach((write, i) => {
        if (applied[i]) this.remember(write.key.toString('latin1'), {version: write.version, tomb: write.tomb, value: write.tomb ? null : (write.value ?? Buffer.alloc(0))})
        write.resolve(applied[i])
      })
    } catch (error) {
      for (const write of writes) write.reject(error as Error)
    }
  }

  private xorDigest(bucket: number, key: Buffer, entry: Versioned): void {
    const [a, b] = fingerprint(key, entry)
    this.digest[bucket * 2] ^= a
    this.digest[bucket * 2 + 1] ^= b
  }
}
