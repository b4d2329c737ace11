import type {Readable} from 'node:stream'

/** The hash names a backend may report for files. */
export type HashName = 'md5' | 'sha256'

/** One file or directory, as every backend describes it (the `--json` shape of DESIGN.md §2). */
export interface Entry {
  /** Last path segment; "" for the root. */
  name: string
  /** Absolute path on the backend, as the user writes it: `/a/b` (no prefix). */
  path: string
  type: 'file' | 'dir'
  /** Bytes for a file; null for a directory. */
  size: number | null
  /** ISO 8601 time of the last change, or null where unknown. */
  modified: string | null
  md5?: string
  sha256?: string
}

export interface RemoveOptions {
  /** Remove a directory and everything under it. Without it a directory is a UsageError. */
  recursive?: boolean
  /** Skip the trash where the backend has one. */
  permanently?: boolean
}

export interface WriteOptions {
  /** The content length in bytes, when known (some APIs need it up front). */
  size?: number
  /** Replace an existing file. Without it an existing file is a ConflictError. */
  overwrite?: boolean
  /**
   * Hashes the content must have. A backend that can check them while
   * writing does so and rejects IntegrityError before the file becomes
   * visible; the local backend always does.
   */
  expect?: Partial<Record<HashName, string>>
  /** Called with the number of bytes sent so far. */
  onProgress?: (bytes: number) => void
  signal?: AbortSignal
  /** What `prepareWrite` resolved ahead for this path; used at most once, ignored when stale or not the backend's. */
  prepared?: Prepared
}

export interface ReadOptions {
  signal?: AbortSignal
  /**
   * The file as the caller already listed or stat'ed it: a backend may trust
   * it instead of asking again (the content is still verified against its
   * hashes by whoever writes it).
   */
  entry?: Entry
  /** What `prepareRead` resolved ahead for this file; used at most once, ignored when stale or not the backend's. */
  prepared?: Prepared
  /**
   * The reader hands chunks back (StorageAdapter.recyclesChunks): a backend
   * may read into pooled shared buffers. Without it, chunks are fresh
   * memory, as from any read stream (a consumer that keeps or never returns
   * them must not drain a pool).
   */
  recycled?: boolean
  /**
   * With `recycled`: the size of the chunks the reader would rather have (serve
   * webdav's GET asks for 1 MiB: the bytes written to the socket are still in
   * the cache they were read into). A hint; a backend may ignore it.
   */
  chunkBytes?: number
  /**
   * The reader reads the file once, start to end (a copy, an upload): a
   * backend may drop what it has read of a local file from the OS page
   * cache behind it, as rclone does (src/base/page-cache.ts). A hint.
   */
  dropBehind?: boolean
  /**
   * Only these bytes: from `offset` (default 0), `count` of them (default: to
   * the end). A backend that honours it says so with `ranged`; callers skip
   * and cut the bytes themselves otherwise.
   */
  range?: {offset: number; count?: number}
}

/**
 * Whatever a backend resolved ahead of one read or write (Yandex: the
 * download or upload link), opaque to callers, who hand it back once.
 */
export interface Prepared {
  /** The path it was resolved for. */
  readonly path: string
}

export interface TransferOptions {
  /** Replace an existing destination file. */
  overwrite?: boolean
}

/** Quota in bytes; null where the backend cannot tell. Backends may add fields. */
export interface About {
  total: number | null
  used: number | null
  free: number | null
  trash: number | null
  [extra: string]: number | null
}

/**
 * The one interface every storage backend implements (DESIGN.md §3).
 *
 * Paths are absolute and normalised (`/`, `/a/b`), without a backend prefix.
 * Parent directories are never created implicitly: callers do that, so a
 * missing parent is reported, not papered over. Every method rejects with
 * the typed errors of `errors.ts` only:
 * - NotFoundError('dir') when a directory, or the parent of the path, is missing;
 * - NotFoundError('file') when the path itself is missing;
 * - ConflictError when a destination exists, a directory is not empty, or there is no space;
 * - AuthError, TemporaryError and UsageError as their names say.
 */
export interface StorageAdapter {
  /** The registry name: `yandex`, `local` or `cluster`. */
  readonly name: string

  /** Writes end with local work only (fsync, rename): a tree transfer may free its slot once the bytes are in. */
  readonly localCommit?: boolean

  /**
   * Lists a directory's entries, paging underneath as needed.
   * Rejects NotFoundError('dir') if it does not exist; ConflictError('not-directory') if it is a file.
   */
  list(dir: string): AsyncIterable<Entry>

  /** Describes one entry. Rejects NotFoundError('file') if it does not exist. */
  stat(path: string): Promise<Entry>

  /**
   * Creates one directory. Rejects ConflictError if anything exists at the path,
   * and NotFoundError('dir') if the parent is missing.
   */
  mkdir(path: string): Promise<Entry>

  /**
   * Removes a file, or a directory with `recursive`. A directory without
   * `recursive` is a UsageError ("is a directory; use -r"). Removing `/` is a UsageError.
   */
  remove(path: string, options?: RemoveOptions): Promise<void>

  /** Opens a file's content as a stream. Rejects NotFoundError('file'); a directory is a UsageError. */
  openRead(path: string, options?: ReadOptions): Promise<Readable>

  /**
   * Stores a stream as the file at `path`, whole or not at all: an interrupted
   * write never leaves a partial file visible at `path`. Resolves with the new
   * entry (including the backend's hashes, where it has them).
   */
  write(path: string, source: Readable, options?: WriteOptions): Promise<Entry>

  // Optional features (rclone style): absent when the backend cannot do them
  // server-side, and callers fall back (copy = read + write; move = copy + remove).

  /** Copies a file or a whole directory server-side. `dst` is the exact new path. */
  copy?(src: string, dst: string, options?: TransferOptions): Promise<Entry>

  /** Moves or renames a file or a whole directory server-side. `dst` is the exact new path. */
  move?(src: string, dst: string, options?: TransferOptions): Promise<Entry>

  /** Quota and usage. */
  about?(): Promise<About>

  /**
   * Resolves ahead what opening `entry` will need (rclone's checkers), so its
   * round trips overlap other files' data; the result goes to `openRead` as
   * `prepared`. May reject with anything: callers then just open without it.
   */
  prepareRead?(entry: Entry, options?: ReadOptions): Promise<Prepared>

  /** Resolves ahead what writing `path` with these options will need; the result goes to `write` as `prepared`. */
  prepareWrite?(path: string, options?: WriteOptions): Promise<Prepared>

  /** Hashes the backend reports in `Entry`, strongest last. Empty or absent: none. */
  readonly hashes?: readonly HashName[]

  /** Releases connections, timers and embedded servers. */
  close?(): Promise<void>

  /**
   * Every entry below `dir`, at any depth, in one go where the backend can do
   * better than listing each directory by path (rclone's ListR), in pages
   * (as ListR's callback takes a slice): a tree of thousands of entries costs
   * a few awaits, not one per entry. Same errors as `list`.
   */
  listRecursive?(dir: string): AsyncIterable<Entry[]>

  /** True when `openRead` honours `range` (reads only those bytes). */
  readonly ranged?: boolean

  /**
   * True when `write` hands the chunks it is given back once stored
   * (src/backends/recycle.ts): a source read for it may then use reused
   * buffers in shared memory (ReadOptions.recycled).
   */
  readonly recyclesChunks?: boolean

  /** Publishes a file or directory and resolves with its public link (Yandex: `PUT /resources/publish`). */
  publish?(path: string): Promise<string>

  /** Revokes the public link of a path. */
  unpublish?(path: string): Promise<void>

  /** The backend's trash, where it has one. */
  readonly trash?: Trash

  /** Has the backend fetch `url` by itself into `path`; resolves once the file is stored (Yandex: `POST /resources/upload?url=`). */
  fetchUrl?(url: string, path: string): Promise<void>

  /**
   * Reads a whole file into an open local file at positions (parallel
   * ranged reads, no reassembly in memory), verifying it against the
   * file's own hash where it has one; resolves with the digests it
   * checked. Used by a transfer to a destination with `writeFrom`, for
   * files for which `readsInto` says yes.
   */
  readInto?(path: string, sink: FileSink, options?: ReadOptions & {onProgress?: (bytes: number) => void}): Promise<Partial<Record<HashName, string>>>

  /** True when `readInto` serves this file (its size, the endpoint's protocol). */
  readsInto?(entry: Entry): boolean

  /**
   * The whole content of a small file (at most WHOLE_FILE_BYTES, as `entry`
   * says), read at once without a stream; undefined when the file is no
   * longer that small (the caller then opens it with `openRead`). A tree of
   * small files is then copied without two streams and a dozen thread-pool
   * round trips per file.
   */
  readWhole?(path: string, entry: Entry): Promise<Buffer | undefined>

  /** Stores a small file given whole, as `write` does with a stream (whole or not at all; `expect` checked). */
  writeWhole?(path: string, data: Buffer, options?: WriteOptions): Promise<Entry>

  /**
   * Stores a file that `fill` writes at positions into a temporary file
   * (the local backend), then checks `expect` against the digests `fill`
   * returns and moves it into place as `write` does.
   */
  writeFrom?(path: string, fill: (sink: FileSink) => Promise<Partial<Record<HashName, string>>>, options?: WriteOptions): Promise<Entry>
}

/** A temporary file open for reading and writing at positions (node:fs calls on `fd`), which `readInto` fills. */
export interface FileSink {
  readonly fd: number
  /** Says that `bytes` more are written (the owner paces its background flushes by it). */
  wrote(bytes: number): void
}

/** One item in a trash: `path` is where it was (`/a/b`), `id` the trash's own name for it. */
export interface TrashItem {
  name: string
  /** The original path, as `trash ls` shows it. */
  path: string
  /** The item's path inside the trash, e.g. `trash:/b_1f2e…`. */
  id: string
  type: 'file' | 'dir'
  size: number | null
  deleted: string | null
}

/** A backend's trash (optional feature). */
export interface Trash {
  list(): AsyncIterable<TrashItem>
  /** Restores an item (its original path or its trash id) to where it was, or to `to`. */
  restore(item: string, options?: {to?: string; overwrite?: boolean}): Promise<string>
  /** Deletes one item for good, or everything when no item is given. */
  empty(item?: string): Promise<void>
}

/** Everything a backend factory may need, resolved from flags, env, .env and the config file. */
export interface BackendSettings {
  /** Attempts after the first for temporary failures (`--retries`). */
  retries: number
  /** First backoff delay in ms (0.5 s by default; tests shorten it). */
  retryBaseMs: number
  /** Yandex OAuth token, if any. */
  token?: string
  /** Yandex API base URL. */
  yandexApiUrl: string
  /** Root folder of the local backend. */
  localRoot: string
  /** Router address `host:port`, or undefined for the embedded cluster. */
  cluster?: string
  /** Data folder of the embedded cluster. */
  dataDir: string
  /** S3 endpoint URL (`S3_ENDPOINT`); unset: AWS. */
  s3Endpoint?: string
  /** S3 region (`S3_REGION`, default us-east-1). */
  s3Region?: string
  /** S3 access key id (`S3_ACCESS_KEY_ID`, else `AWS_ACCESS_KEY_ID`). */
  s3AccessKeyId?: string
  /** S3 secret key (`S3_SECRET_ACCESS_KEY`, else `AWS_SECRET_ACCESS_KEY`). */
  s3SecretAccessKey?: string
  /** Path-style addressing (`S3_FORCE_PATH_STYLE`); default: on when an endpoint is set. */
  s3ForcePathStyle?: boolean
  /** WebDAV server root URL (`WEBDAV_URL`), user and password. */
  webdavUrl?: string
  webdavUser?: string
  webdavPassword?: string
  /** Writes a diagnostic line to stderr when verbose. */
  log: (message: string) => void
}

export type BackendFactory = (settings: BackendSettings) => Promise<StorageAdapter>

/** Files up to this size may be moved whole (StorageAdapter.readWhole/writeWhole). */
export const WHOLE_FILE_BYTES = 64 * 1024
