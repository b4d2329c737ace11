/**
 * A storage server's LevelDB layout, with group commit and per-bucket digests.
 *
 * Keys (internal key = `<db>:<user key>`):
 *   'v' + bucket (2 bytes) + internal key  →  header (tombstone flag, version)
 *   'd' + internal key                     →  value (live keys only), or for a
 *                                             blob its size (8 bytes BE)
 * A header's flag byte is 0 (live), 1 (tombstone) or 2 (live, the value in
 * a blob file: see blobs.ts); values larger than 64 KiB are blobs.
 * Headers are grouped by bucket so anti-entropy can list one bucket with a
 * range scan; a read fetches a key's header and value together.
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
 * LevelDB read is a round trip through libuv's thread pool; and a key the
 * store has never held (KeyFilter) is neither read before a write of it
 * nor for a read of it. In a
 * batch, only the newest write of each key is written (see flush).
 */
import {ClassicLevel} from './level.js'

import {BLOB_MIN_BYTES, BlobStore} from './blobs.js'
import type {BufferPool} from './resp.js'
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
  /** key.toString('latin1'): the cache's and the batch's id of the key. */
  id: string
  value: Buffer | null
  done: (error: Error | null, applied: boolean) => void
  /** Its blob, written under its final name before the write was queued (see applyCb). */
  early?: string
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
  const out = Buffer.allocUnsafe(1 + key.length)
  out[0] = 0x64 // 'd'
  key.copy(out, 1)
  return out
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
  /**
   * Write blob files on this thread, 64 KiB per write(2), instead of in
   * libuv's pool (see BlobStore). For a storage server, whose event loop
   * has nothing else to do meanwhile; not for a process whose main thread
   * is busy elsewhere (the embedded mode hashes on it).
   */
  inlineBlobWrites?: boolean
}

const CACHEABLE_VALUE_BYTES = 64 * 1024
/** Header flag byte of a live key whose value is a blob. */
const BLOB_FLAG = 2

/** A header as stored on a server: encodeHeader's, with the blob flag where the value is a blob. */
function storedHeader(version: number, tomb: boolean, blob: boolean): Buffer {
  const header = encodeHeader(version, tomb)
  if (blob) header[0] = BLOB_FLAG
  return header
}

interface Current extends Versioned {
  blob: boolean
}

/** What one batch writes for one key: its newest write, over what LevelDB held before the batch. */
interface PlanStep {
  write: QueuedWrite
  key: Buffer
  bucket: number
  previous: Current | null
  blob: string | null
}

/**
 * The keys this store holds a header for, as 32-bit fingerprints in an
 * open-addressing hash set (4-8 bytes per key). A write of a key that is
 * neither in the cache nor here is a write of a new key: no LevelDB read is
 * needed to learn its current version. A fingerprint shared by two keys
 * only costs that read; a key is never reported absent while it has a
 * header (fingerprints are added with every header and never removed).
 */
export class KeyFilter {
  private slots = new Uint32Array(1024)
  private count = 0

  static fingerprint(key: Buffer): number {
    // Never 0, which marks an empty slot.
    return (murmur3(key, 0x5f3759df) | 1) >>> 0
  }

  get size(): number {
    return this.count
  }

  has(fingerprint: number): boolean {
    const mask = this.slots.length - 1
    for (let at = fingerprint & mask; ; at = (at + 1) & mask) {
      const held = this.slots[at]
      if (held === fingerprint) return true
      if (held === 0) return false
    }
  }

  add(fingerprint: number): void {
    if ((this.count + 1) * 2 > this.slots.length) this.grow()
    const mask = this.slots.length - 1
    for (let at = fingerprint & mask; ; at = (at + 1) & mask) {
      const held = this.slots[at]
      if (held === fingerprint) return
      if (held === 0) {
        this.slots[at] = fingerprint
        this.count++
        return
      }
    }
  }

  private grow(): void {
    const old = this.slots
    this.slots = new Uint32Array(old.length * 2)
    this.count = 0
    for (const fingerprint of old) if (fingerprint !== 0) this.add(fingerprint)
  }
}

/** A full disk, from the file system (blobs) or from LevelDB, which says it in its message. */
function isNoSpace(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOSPC' || /no space left on device/i.test(String((error as Error)?.message))
}

/** A failed write as its writer sees it: a full disk as NOSPACE. */
function storageFailure(error: unknown): Error {
  return isNoSpace(error) ? new Error(`NOSPACE no space left on this server's disk: ${(error as Error).message}`) : (error as Error)
}

function sizeBytes(size: number): Buffer {
  const out = Buffer.allocUnsafe(8)
  out.writeBigUInt64BE(BigInt(size))
  return out
}

/** The periodic fsync syncs blobs beside the writes until at most this many are left for the step between two batches. */
const SYNC_BETWEEN_BATCHES = 4

export class ServerStore {
  readonly db: Db
  readonly blobs: BlobStore
  private readonly sync: boolean
  private readonly cache = new Map<string, StoredRecord>()
  private cacheBytes = 0
  private readonly cacheLimit: number
  private fsyncTimer: NodeJS.Timeout | null = null
  private dirty = false
  private syncing: Promise<void> | null = null
  private readonly digest = new Uint32Array(BUCKETS * 2)
  /** Every key with a header, once the open-time scan is done (see KeyFilter). */
  private readonly known = new KeyFilter()
  /** Whether `known` holds every key (the open-time scan is done): reads of other keys then need no LevelDB read. */
  private knownComplete = false
  private queue: QueuedWrite[] = []
  private chain: Promise<void> = Promise.resolve()
  private flushScheduled = false
  private live = 0
  /** The largest version among the headers found at open (a new clock starts past it). */
  highestVersion = 0
  /** The open-time header scan, once started. */
  private scanned: Promise<void> | null = null
  /** The scan and its sweep of leftover blobs are done: a blob written now cannot be swept by them. */
  private scanDone = false
  /** Writes queued or in the batch being committed, per key id (see applyCb). */
  private readonly pending = new Map<string, number>()
  /** Blob writes started by applyCb whose write is not queued yet. */
  private readonly early = new Set<Promise<void>>()

  constructor(dir: string, options: ServerStoreOptions = {}) {
    // Large values go to blob files (blobs.ts), so LevelDB holds headers and
    // small values. A 32 MiB memtable (the default is 4) means fewer flushes
    // and level-0 compactions under a stream of small writes; it fills only
    // as writes arrive. Snappy is off: the values that reach LevelDB are
    // mostly small, and its CPU is not worth it.
    this.db = new ClassicLevel<Buffer, Buffer>(dir, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      writeBufferSize: 32 * 1024 * 1024,
      maxFileSize: 32 * 1024 * 1024,
      compression: false,
    })
    this.sync = options.syncWrites ?? false
    this.blobs = new BlobStore(dir, this.sync, options.inlineBlobWrites ?? false)
    this.cacheLimit = options.cacheBytes ?? 32 * 1024 * 1024
  }

  /**
   * Opens the database, computes the digests and key count from it, and
   * removes blob files that no header names (a crash's leftovers), before
   * any write can start a new one. With `deferScan` that scan (every header
   * of the store) waits for the first write, purge or `scan()` call: a
   * process that only reads (the embedded mode's `ls`, or a sync with
   * nothing to do) never pays for it. Until then `digests()`, `liveKeys` and
   * `highestVersion` are not known; call `scan()` before reading them.
   */
  async open(options: {deferScan?: boolean} = {}): Promise<void> {
    await this.db.open()
    if (!options.deferScan) await this.scan()
    if (!this.sync) {
      this.fsyncTimer = setInterval(() => {
        if (!this.dirty || this.syncing) return
        this.dirty = false
        this.syncing = this.backgroundSync().finally(() => (this.syncing = null))
      }, 1000)
      this.fsyncTimer.unref()
    }
  }

  /** The open-time scan of every header (see open), run once; writes wait for it. */
  scan(): Promise<void> {
    this.scanned ??= this.scanHeaders()
    return this.scanned
  }

  private async scanHeaders(): Promise<void> {
    const blobs = new Set<string>()
    for await (const [hkey, header] of this.db.iterator({gte: Buffer.from('v'), lt: Buffer.from('w')})) {
      const key = hkey.subarray(3)
      const entry = decodeHeader(header)
      this.xorDigest(hkey.readUInt16BE(1), key, entry)
      this.known.add(KeyFilter.fingerprint(key))
      if (entry.version > this.highestVersion) this.highestVersion = entry.version
      if (!entry.tomb) this.live++
      if (header[0] === BLOB_FLAG) blobs.add(this.blobs.name(key, entry.version))
    }
    this.knownComplete = true
    await this.blobs.sweep(blobs)
    this.scanDone = true
  }

  /**
   * The periodic fsync. The blobs written so far are fsync'd beside the
   * writes, which go on meanwhile; only the last step (the few blobs written
   * in the meantime, then LevelDB's log) waits its turn between batches, so
   * writes never stall for long behind a second's worth of fsyncs.
   */
  private async backgroundSync(): Promise<void> {
    try {
      await this.blobs.sync()
      // The blobs written meanwhile too, while more than a few were (at most
      // three more rounds): what waits between batches is then a handful of
      // fsyncs, not the last second's worth of blobs (measured: 130-350 ms
      // of stalled writes each second during a 1 GiB upload).
      for (let round = 0; round < 3 && this.blobs.unsyncedCount > SYNC_BETWEEN_BATCHES; round++) await this.blobs.sync()
      const last = this.chain.then(() => this.syncAll())
      this.chain = last.catch(() => undefined)
      await last
    } catch {
      this.dirty = true
    }
  }

  /** Blobs first, then LevelDB's log: a synced header never names an unsynced blob. */
  private async syncAll(): Promise<void> {
    await this.blobs.sync()
    await this.db.put(Buffer.from('s'), Buffer.alloc(0), {sync: true})
  }

  /** Waits for the queued writes, then fsyncs everything written so far. */
  async syncNow(): Promise<void> {
    await this.drain()
    this.dirty = false
    await this.syncAll()
  }

  async close(): Promise<void> {
    if (this.fsyncTimer) clearInterval(this.fsyncTimer)
    await this.syncing
    await this.drain()
    if (this.dirty) await this.syncAll()
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

  /** A key's value; a large one (a blob) read into a buffer from `pool` when given (see getRecord). */
  async getValue(key: Buffer, pool?: BufferPool): Promise<Buffer | undefined> {
    return (await this.getRecord(key, pool))?.value ?? undefined
  }

  /** The record of a key if it is in the read cache (small values only), without a LevelDB read. */
  cachedRecord(key: Buffer): StoredRecord | undefined {
    return this.cache.get(key.toString('latin1'))
  }

  async getHeader(key: Buffer): Promise<Versioned | null> {
    const cached = this.cache.get(key.toString('latin1'))
    if (cached) return cached
    if (this.absent(key)) return null
    const header = await this.db.get(headerKey(key))
    return header ? decodeHeader(header) : null
  }

  /**
   * A key's header and value. With `pool`, a value kept in a blob is read
   * into a buffer from it; blobs are never cached, so that buffer belongs to
   * the caller alone, who may hand it back to the pool once done with it.
   */
  async getRecord(key: Buffer, pool?: BufferPool): Promise<StoredRecord | null> {
    const id = key.toString('latin1')
    const cached = this.cache.get(id)
    if (cached) return cached
    if (this.absent(key)) return null
    // A blob can be replaced (and its file removed) between reading its
    // header and reading its file; the header is then read again.
    for (let attempt = 0; ; attempt++) {
      const [header, value] = await this.db.getMany([headerKey(key), valueKey(key)])
      if (!header) return null
      const entry = decodeHeader(header)
      if (header[0] === BLOB_FLAG) {
        const size = value && value.length === 8 ? Number(value.readBigUInt64BE(0)) : -1
        const data = size < 0 ? null : await this.blobs.read(this.blobs.name(key, entry.version), size, pool)
        if (data) return {...entry, value: data}
        if (attempt < 3) continue
        throw new Error(`ERR the value of this key at version ${entry.version} is missing on this server`)
      }

      const record = {...entry, value: entry.tomb ? null : (value ?? Buffer.alloc(0))}
      this.remember(id, record)
      return record
    }
  }

  /** A key this store has certainly never held a header for (a read of it needs no LevelDB read). */
  private absent(key: Buffer): boolean {
    return this.knownComplete && !this.known.has(KeyFilter.fingerprint(key))
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
    return new Promise((resolve, reject) => this.applyCb(key, version, tomb, value, (error, applied) => (error ? reject(error) : resolve(applied))))
  }

  /** apply() by callback (the server's XSET path): `done` gets the failure, or whether the version was applied, once durable. */
  applyCb(key: Buffer, version: number, tomb: boolean, value: Buffer | null, done: (error: Error | null, applied: boolean) => void): void {
    const write: QueuedWrite = {key, id: key.toString('latin1'), version, tomb, value: tomb ? null : value, done}
    const early = !tomb && value && value.length >= BLOB_MIN_BYTES && this.scanDone && this.absent(key) && !this.pending.has(write.id)
    this.pending.set(write.id, (this.pending.get(write.id) ?? 0) + 1)
    if (!early) {
      this.enqueue(write)
      return
    }

    // The blob of a key this store has never held, with no other write of it
    // pending, is written first, beside the batches, and the write is queued
    // only once its file is complete: a batch (and the small writes in it,
    // such as an upload's intent) then never waits for megabytes of file
    // writes. Its name (key and version) is written by nobody else; it
    // becomes current only with its batch, as before, and is removed if that
    // batch fails or does not apply it. A crash first leaves an unreferenced
    // file, swept at the next start (scanDone: that sweep is over).
    write.early = this.blobs.name(key, version)
    const started: Promise<void> = this.blobs.write(write.early, value).then(
      () => {
        this.early.delete(started)
        this.enqueue(write)
      },
      (error: unknown) => {
        this.early.delete(started)
        void this.blobs.remove(write.early!).catch(() => undefined)
        this.settle([write])
        done(storageFailure(error), false)
      },
    )
    this.early.add(started)
  }

  private enqueue(write: QueuedWrite): void {
    this.queue.push(write)
    if (!this.flushScheduled) {
      this.flushScheduled = true
      this.chain = this.chain.then(() => this.flush())
    }
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
      await this.scan()
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

  /**
   * Commits the queued writes: the newer versions win, in order. Blobs are
   * written first, then one batch makes every change current at once; only
   * then are digests and counts updated and the blobs of replaced versions
   * removed. A failure anywhere leaves the store as it was, bar unreferenced
   * blob files that the next start sweeps.
   */
  private async flush(): Promise<void> {
    this.flushScheduled = false
    const writes = this.queue
    this.queue = []
    if (writes.length === 0) return
    const created: string[] = []
    let unused: string[] | undefined
    try {
      // A store opened with deferScan learns its digests, counts and leftover blobs before its first write.
      await this.scan()
      const keys = new Map<string, {key: Buffer; bucket: number; current: Current | null}>()
      const unknown: Array<{key: Buffer; bucket: number; current: Current | null}> = []
      for (const write of writes) {
        if (keys.has(write.id)) continue
        const entry = {key: write.key, bucket: bucketOf(write.key), current: null as Current | null}
        keys.set(write.id, entry)
        // Cached values are small, so never blobs.
        const cached = this.cache.get(write.id)
        if (cached) entry.current = {version: cached.version, tomb: cached.tomb, blob: false}
        // A key with no header at all (a new key) needs no read.
        else if (this.known.has(KeyFilter.fingerprint(write.key))) unknown.push(entry)
      }
      if (unknown.length > 0) {
        const headers = await this.db.getMany(unknown.map((entry) => headerKey(entry.key, entry.bucket)))
        unknown.forEach((entry, i) => {
          const header = headers[i]
          entry.current = header && header.length === HEADER_BYTES ? {...decodeHeader(header), blob: header[0] === BLOB_FLAG} : null
        })
      }

      // One step per key: the newest applied write of each key in this
      // batch. An older write of the same key in the same batch is applied
      // (and acknowledged as such) but superseded inside the one atomic
      // LevelDB write, so it is never written: nothing can observe it
      // there, and LWW would discard it anyway. A hot key (redis-benchmark's
      // default key, a directory record) then costs one header and one value
      // per batch, not two entries per write.
      const plan: PlanStep[] = []
      const steps = new Map<string, PlanStep>()
      const applied = writes.map((write) => {
        const entry = keys.get(write.id)!
        if (!newer(write, entry.current)) return false
        const large = !write.tomb && (write.value?.length ?? 0) >= BLOB_MIN_BYTES
        const blob = large ? this.blobs.name(entry.key, write.version) : null
        const step = steps.get(write.id)
        if (step) {
          // Supersedes an earlier step of this batch, which keeps its `previous` (what LevelDB holds).
          step.write = write
          step.blob = blob
        } else {
          const fresh: PlanStep = {write, key: entry.key, bucket: entry.bucket, previous: entry.current, blob}
          steps.set(write.id, fresh)
          plan.push(fresh)
        }
        entry.current = {version: write.version, tomb: write.tomb, blob: blob !== null}
        return true
      })

      const blobWrites = plan.filter((step) => step.blob !== null)
      created.push(...blobWrites.map((step) => step.blob!))
      // Blobs written early (applyCb) that this batch does not make current
      // (superseded by a newer write of the key, or refused): removed once it is done.
      const kept = new Set(blobWrites.map((step) => step.blob!))
      for (const write of writes) if (write.early && !kept.has(write.early)) (unused ??= []).push(write.early)
      await Promise.all(blobWrites.filter((step) => step.write.early !== step.blob).map((step) => this.blobs.write(step.blob!, step.write.value!)))

      // A chained batch: cheaper per operation than the array form, whose
      // per-op normalisation was the largest cost of a small write here.
      const batch = this.db.batch()
      for (const {write, key, bucket, blob} of plan) {
        batch.put(headerKey(key, bucket), storedHeader(write.version, write.tomb, blob !== null))
        if (write.tomb) batch.del(valueKey(key))
        else batch.put(valueKey(key), blob ? sizeBytes(write.value!.length) : (write.value ?? Buffer.alloc(0)))
      }
      if (batch.length > 0) await batch.write({sync: this.sync})
      else await batch.close()
      created.length = 0
      this.dirty = true
      for (const {key} of plan) this.known.add(KeyFilter.fingerprint(key))

      const replaced: string[] = []
      for (const {write, key, bucket, previous} of plan) {
        if (previous) {
          this.xorDigest(bucket, key, previous)
          if (!previous.tomb) this.live--
          if (previous.blob) replaced.push(this.blobs.name(key, previous.version))
        }
        this.xorDigest(bucket, key, write)
        if (!write.tomb) this.live++
      }
      for (const {write} of plan) this.remember(write.id, {version: write.version, tomb: write.tomb, value: write.tomb ? null : (write.value ?? Buffer.alloc(0))})
      // Best effort: a file left by a failed removal is swept at the next start.
      await Promise.all([...replaced, ...(unused ?? [])].map((name) => this.blobs.remove(name).catch(() => undefined)))
      this.settle(writes)
      for (let i = 0; i < writes.length; i++) writes[i].done(null, applied[i])
    } catch (error) {
      const early = writes.filter((write) => write.early).map((write) => write.early!)
      await Promise.all([...new Set([...created, ...early])].map((name) => this.blobs.remove(name).catch(() => undefined)))
      this.settle(writes)
      const failure = storageFailure(error)
      for (const write of writes) write.done(failure, false)
    }
  }

  /** Waits for every write applied so far: the blobs still being written, then the batches. */
  private async drain(): Promise<void> {
    while (this.early.size > 0) await Promise.all(this.early)
    await this.chain
  }

  /** These writes are no longer pending (applyCb's early blob writes may start for their keys again). */
  private settle(writes: QueuedWrite[]): void {
    for (const write of writes) {
      const left = (this.pending.get(write.id) ?? 1) - 1
      if (left > 0) this.pending.set(write.id, left)
      else this.pending.delete(write.id)
    }
  }

  private xorDigest(bucket: number, key: Buffer, entry: Versioned): void {
    const [a, b] = fingerprint(key, entry)
    this.digest[bucket * 2] ^= a
    this.digest[bucket * 2 + 1] ^= b
  }
}
