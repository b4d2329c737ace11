/**
 * What the cluster backend needs from the key-value layer (src/kv): a
 * versioned compare-and-set for metadata, plain content-addressed puts for
 * pieces, and direct reads from the servers that hold a key.
 */

/** A value with the version the router gave it (opaque, comparable for equality only). */
export interface Versioned {
  value: Buffer
  version: string
}

export interface ClusterStore {
  /** Reads a value and its version; null when missing. */
  getVersioned(db: number, key: string): Promise<Versioned | null>
  /** The version getVersioned would return, without the value; null when missing. */
  currentVersion(db: number, key: string): Promise<string | null>
  /**
   * Writes `value` (or deletes, with null) only if the key's current version
   * is `expected` (null: the key must be missing). Resolves with the new
   * version, or null when another writer got there first.
   */
  compareAndSet(db: number, key: string, expected: string | null, value: Buffer | null): Promise<string | null>
  /** A value's version and byte length without its content; null when missing. */
  versionOf(db: number, key: string): Promise<{version: string; size: number} | null>
  get(db: number, key: string): Promise<Buffer | null>
  set(db: number, key: string, value: Buffer): Promise<void>
  del(db: number, keys: string[]): Promise<void>
  /** For each key, whether it exists; one round trip. */
  existsMany(db: number, keys: string[]): Promise<boolean[]>
  /** Keys matching a glob pattern. */
  keys(db: number, pattern: string): Promise<string[]>
  /** Addresses (`host:port`) of the live servers that hold `key`, preferred first. */
  locate(db: number, key: string): Promise<string[]>
  /** Reads a key straight from one server, bypassing the router; null when that server does not have it. */
  readFrom(address: string, db: number, key: string): Promise<Buffer | null>
  /** Takes back a buffer readFrom() returned, for reuse, once nothing uses it any more (optional). */
  recycle?(buffer: Buffer): void
  /** Free and total bytes of the servers' disks, where the cluster can tell. */
  capacity(): Promise<{total: number | null; free: number | null}>
  close(): Promise<void>
}
