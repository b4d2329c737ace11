/**
 * The data of a main or a replica: databases 0–15 of string keys, held in
 * memory (as redis-server holds its data) and kept in LevelDB through the KV
 * layer's ServerStore (group commit; a write resolves once it is in LevelDB's
 * log, so it survives a SIGKILL). Reads are served from memory; a snapshot
 * for a full resynchronisation is taken in one synchronous step, so it is
 * exactly the data at one replication offset.
 *
 * LevelDB keys are `<db>:<key>`; versions come from a hybrid clock, so the
 * last write wins and nothing older overwrites it.
 */
import {mkdir} from 'node:fs/promises'

import {ServerStore} from '../kv/storage.js'
import {HybridClock} from '../kv/versions.js'
import {DATABASES, type Snapshot} from './rdb.js'

function storeKey(db: number, key: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${db}:`), key])
}

/**
 * A value to keep: parsed arguments are views into socket chunks of up to
 * 64 KiB, and keeping a small view would keep its whole chunk alive.
 */
function own(value: Buffer): Buffer {
  return value.buffer.byteLength > Math.max(8192, value.length * 2) ? Buffer.from(value) : value
}

export class Dataset {
  private readonly dbs: Array<Map<string, Buffer>> = Array.from({length: DATABASES}, () => new Map())
  private readonly store: ServerStore
  private readonly clock = new HybridClock()

  constructor(private readonly dir: string) {
    // The store's read cache holds the same value buffers as the maps here, so
    // a large one costs little memory and spares each write batch a LevelDB
    // read of the headers it replaces.
    this.store = new ServerStore(dir, {cacheBytes: 1024 * 1024 * 1024})
  }

  async open(): Promise<void> {
    await mkdir(this.dir, {recursive: true})
    await this.store.open()
    for await (const [hkey, header] of this.store.db.iterator({gte: Buffer.from('v'), lt: Buffer.from('w')})) {
      const key = hkey.subarray(3)
      const colon = key.indexOf(0x3a)
      const db = Number(key.toString('latin1', 0, colon))
      if (colon < 1 || !(db >= 0 && db < DATABASES)) continue
      const version = Number(header.readBigUInt64BE(header.length - 8))
      if (Number.isFinite(version)) this.clock.observe(version)
      const record = await this.store.getRecord(key)
      if (record && !record.tomb && record.value) this.dbs[db].set(key.subarray(colon + 1).toString('latin1'), record.value)
    }
  }

  async close(): Promise<void> {
    await this.store.close()
  }

  get(db: number, key: Buffer): Buffer | undefined {
    return this.dbs[db].get(key.toString('latin1'))
  }

  has(db: number, key: Buffer): boolean {
    return this.dbs[db].has(key.toString('latin1'))
  }

  size(db: number): number {
    return this.dbs[db].size
  }

  /** Every key of a database, as buffers. */
  *keys(db: number): Generator<Buffer> {
    for (const key of this.dbs[db].keys()) yield Buffer.from(key, 'latin1')
  }

  /** Sets a key now (reads see it at once); resolves when it is in LevelDB. */
  set(db: number, key: Buffer, value: Buffer): Promise<void> {
    value = own(value)
    this.dbs[db].set(key.toString('latin1'), value)
    return this.store.apply(storeKey(db, key), this.clock.next(), false, value).then(() => undefined)
  }

  /** Deletes a key now; resolves true once the deletion is in LevelDB, or false at once if there was no such key. */
  async delete(db: number, key: Buffer): Promise<boolean> {
    if (!this.dbs[db].delete(key.toString('latin1'))) return false
    await this.store.apply(storeKey(db, key), this.clock.next(), true, null)
    return true
  }

  /** The current data, every database, in one synchronous step. */
  snapshot(): Snapshot {
    return this.dbs.map((map) => Array.from(map, ([key, value]) => [Buffer.from(key, 'latin1'), value] as const))
  }

  /** Starts a replacement of all the data (a full resync): returns the loader; `finish` drops the keys not loaded. */
  replaceAll(): {load: (db: number, key: Buffer, value: Buffer) => void; finish: () => Promise<void>} {
    const fresh: Array<Map<string, Buffer>> = Array.from({length: DATABASES}, () => new Map())
    const writes: Array<Promise<unknown>> = []
    return {
      load: (db, key, value) => {
        if (db < 0 || db >= DATABASES) throw new Error(`database ${db} is out of range`)
        value = own(value)
        fresh[db].set(key.toString('latin1'), value)
        writes.push(this.store.apply(storeKey(db, key), this.clock.next(), false, value))
      },
      finish: async () => {
        for (const [db, old] of this.dbs.entries()) {
          for (const key of old.keys()) {
            if (!fresh[db].has(key)) writes.push(this.store.apply(storeKey(db, Buffer.from(key, 'latin1')), this.clock.next(), true, null))
          }
          this.dbs[db] = fresh[db]
        }
        await Promise.all(writes)
      },
    }
  }
}
