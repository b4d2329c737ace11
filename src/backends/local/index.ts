import {createHash, randomBytes} from 'node:crypto'
import {closeSync, constants, createReadStream, createWriteStream, fstatSync, fsync, open, openSync, readSync, rmSync, statSync, writeSync, type Stats} from 'node:fs'
import type {Writable} from 'node:stream'
import fs, {type FileHandle} from 'node:fs/promises'
import nodePath from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {WHOLE_FILE_BYTES, type About, type BackendFactory, type Entry, type FileSink, type HashName, type ReadOptions, type RemoveOptions, type StorageAdapter, type TransferOptions, type WriteOptions} from '../adapter.js'
import {ConflictError, NotFoundError, UsageError} from '../errors.js'
import {mapFsError} from '../fs-errors.js'
import {HashingStream, isSelfVerifying, namesIn, verifyDigests} from '../hashing.js'
import {recycleWhenWritten} from '../recycle.js'
import {markFileRegion, trackPartial} from '../../base/index.js'
import {baseName, isWithin, joinPath, parentOf} from '../remote-path.js'
import {BackgroundFlush, FileWriter} from './file-writer.js'

/** Entries stat'ed between two turns of the event loop while listing. */
const STAT_BATCH = 256

let tempPrefix: string | undefined
let tempCounter = 0

/** Temporary files of writes in progress; hidden from listings. */
const PARTIAL = /^\.disk-client-[0-9a-f]+\.partial$/

/** The local backend: a folder on this machine, with writes made atomic by write-then-rename. */
export class LocalBackend implements StorageAdapter {
  readonly name = 'local'
  readonly ranged = true
  /** A write ends with local work only (fsync, rename): a tree transfer frees its slot once the bytes are in. */
  readonly localCommit = true
  /**
   * write() hands each chunk back once its bytes are in the file
   * (recycleWhenWritten): a local source then reads into reused shared
   * buffers (file-reader.ts) instead of a fresh 1 MiB buffer per read.
   */
  readonly recyclesChunks = true

  constructor(readonly root: string) {}

  private real(path: string): string {
    // Paths are normalised by remote-path.ts (absolute, no `.`, `..` or
    // trailing slash), so joining cannot climb out of root, and plain
    // concatenation is the join (path.join normalised again, per listed file).
    if (this.root === '/' || this.root === '') return path
    return path === '/' ? this.root : this.root + path
  }

  private toEntry(path: string, stats: Stats): Entry {
    return {
      name: baseName(path),
      path,
      type: stats.isDirectory() ? 'dir' : 'file',
      size: stats.isDirectory() ? null : stats.size,
      modified: stats.mtime.toISOString(),
    }
  }

  /** The names in a directory, sorted, without our temporary files. */
  private async names(dir: string): Promise<string[]> {
    let names: string[]
    try {
      names = await fs.readdir(this.real(dir))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') {
        throw new ConflictError(`cannot list ${dir}: not a directory`, 'not-directory')
      }

      throw mapFsError(error, `cannot list ${dir}`, 'dir')
    }

    return names.sort().filter((name) => !PARTIAL.test(name))
  }

  /**
   * The entry of a listed name, or undefined when it was removed while we
   * listed, or is a dangling link (skipped, as `ls` does). The stat is
   * synchronous: for the cached inodes of a listing, a thread-pool round
   * trip and a promise per file cost about three times the stat itself
   * (a sync of a large folder spends its time here).
   */
  private entryOf(path: string): Entry | undefined {
    let stats: Stats | undefined
    try {
      stats = statSync(this.real(path), {throwIfNoEntry: false})
    } catch (error) {
      throw mapFsError(error, `cannot stat ${path}`)
    }

    return stats && this.toEntry(path, stats)
  }

  async *list(dir: string): AsyncIterable<Entry> {
    const names = await this.names(dir)
    for (let start = 0; start < names.length; start += STAT_BATCH) {
      // Other work (the far side of a sync, say) runs between batches.
      if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve))
      for (let i = start; i < Math.min(names.length, start + STAT_BATCH); i++) {
        const entry = this.entryOf(joinPath(dir, names[i]))
        if (entry) yield entry
      }
    }
  }

  /**
   * Every entry below `dir` (rclone's ListR), walked directory by directory
   * in this process, without the per-directory tasks of a generic tree
   * listing, in pages of up to STAT_BATCH entries (one await per page, not
   * per entry). A directory removed while we walk is skipped.
   */
  async *listRecursive(dir: string): AsyncIterable<Entry[]> {
    const pending = [dir]
    for (let next = 0; next < pending.length; next++) {
      const current = pending[next]
      let names: string[]
      try {
        names = await this.names(current)
      } catch (error) {
        if (current !== dir && (error instanceof NotFoundError || error instanceof ConflictError)) continue
        throw error
      }

      for (let start = 0; start < names.length; start += STAT_BATCH) {
        if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve))
        const page: Entry[] = []
        for (let i = start; i < Math.min(names.length, start + STAT_BATCH); i++) {
          const entry = this.entryOf(joinPath(current, names[i]))
          if (!entry) continue
          if (entry.type === 'dir') pending.push(entry.path)
          page.push(entry)
        }

        if (page.length > 0) yield page
      }
    }
  }

  async stat(path: string): Promise<Entry> {
    try {
      return this.toEntry(path, await fs.stat(this.real(path)))
    } catch (error) {
      throw mapFsError(error, `cannot stat ${path}`)
    }
  }

  async mkdir(path: string): Promise<Entry> {
    try {
      await fs.mkdir(this.real(path))
    } catch (error) {
      throw mapFsError(error, `cannot create directory ${path}`, 'dir')
    }

    return this.stat(path)
  }

  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    if (path === '/') throw new UsageError('refusing to remove the root directory')
    const entry = await this.stat(path)
    if (entry.type === 'dir' && !options.recursive) {
      throw new UsageError(`cannot remove ${path}: is a directory; use -r`)
    }

    try {
      await fs.rm(this.real(path), {recursive: entry.type === 'dir'})
    } catch (error) {
      throw mapFsError(error, `cannot remove ${path}`)
    }
  }

  async openRead(path: string, options: ReadOptions = {}): Promise<Readable> {
    const entry = await this.stat(path)
    if (entry.type === 'dir') throw new UsageError(`cannot read ${path}: is a directory`)
    const handle = await fs.open(this.real(path), 'r').catch((error) => {
      throw mapFsError(error, `cannot open ${path}`)
    })
    const range = options.range
    // Pooled shared chunks only for a consumer that hands them back (the
    // cluster's upload); for any other, 1 MiB reads into fresh memory, a
    // sixteenth of the default's system calls and stream events.
    // (file-reader.js, with the pool it shares with the cluster's code, loads only then.)
    // Each stream is marked with the file region it would read, so that a
    // server may have that region sent from a pool thread instead (base/send-file.ts).
    const size = entry.size ?? 0
    if (!range && options.recycled) {
      const chunks = new (await import('./file-reader.js')).FileChunks(handle, size, options.chunkBytes, options.dropBehind)
      return options.dropBehind ? chunks : markFileRegion(chunks, {fd: handle.fd, offset: 0, length: size})
    }

    if (!range) return markFileRegion(handle.createReadStream({highWaterMark: 1 << 20}), {fd: handle.fd, offset: 0, length: size})
    if (range.count === 0) {
      await handle.close()
      return Readable.from([])
    }

    const stream = handle.createReadStream({
      highWaterMark: 1 << 20,
      start: range.offset,
      end: range.count === undefined ? undefined : range.offset + range.count - 1,
    })
    return markFileRegion(stream, {fd: handle.fd, offset: range.offset, length: range.count ?? Math.max(0, size - range.offset)})
  }

  /** Checks that the parent is a directory and the destination may be written. */
  private async prepareDestination(path: string, overwrite: boolean, what: string): Promise<void> {
    const parent = await fs.stat(this.real(parentOf(path))).catch((error) => {
      throw mapFsError(error, `${what}: parent directory ${parentOf(path)}`, 'dir')
    })
    if (!parent.isDirectory()) throw new NotFoundError(`${what}: ${parentOf(path)} is not a directory`, 'dir')
    const existing = await fs.stat(this.real(path)).catch(() => undefined)
    if (existing?.isDirectory()) throw new ConflictError(`${what}: ${path} is an existing directory`, 'is-directory')
    if (existing && !overwrite) {
      throw new ConflictError(`${what}: destination already exists`, 'exists', {hint: 'use --overwrite'})
    }
  }

  /** Moves a finished temporary file into place: rename to replace, link to refuse an existing file atomically. */
  private async commit(temp: string, path: string, overwrite: boolean, what: string): Promise<void> {
    try {
      if (overwrite) {
        await fs.rename(temp, this.real(path))
      } else {
        await fs.link(temp, this.real(path))
        await fs.unlink(temp)
      }
    } catch (error) {
      await fs.rm(temp, {force: true})
      throw mapFsError(error, what)
    }
  }

  private tempPath(path: string): string {
    // A random part per process and a counter: unique, and no call into the
    // random generator per file (a tree of small files made one per file).
    tempPrefix ??= randomBytes(6).toString('hex')
    return nodePath.join(this.real(parentOf(path)), `.disk-client-${tempPrefix}${(tempCounter++).toString(16).padStart(4, '0')}.partial`)
  }

  /**
   * A small file read whole with synchronous calls, as the listing stats:
   * for a file of at most WHOLE_FILE_BYTES, the open, read and close cost
   * less than the thread-pool round trips and the stream around them.
   * Reads one byte more than listed, to see a file that grew since
   * (undefined: the caller streams it instead).
   */
  async readWhole(path: string, entry: Entry): Promise<Buffer | undefined> {
    const size = entry.size
    if (entry.type !== 'file' || size === null || size > WHOLE_FILE_BYTES) return undefined
    let fd: number
    try {
      // Only a regular file: a FIFO or device (listed as a file) is streamed,
      // and opening one here would block the event loop until a writer
      // comes, or take a reader from under one. Non-blocking, in case one
      // replaces the file between the two calls.
      if (!statSync(this.real(path)).isFile()) return undefined
      fd = openSync(this.real(path), constants.O_RDONLY | constants.O_NONBLOCK)
    } catch (error) {
      throw mapFsError(error, `cannot open ${path}`)
    }
    try {
      const data = Buffer.allocUnsafe(size + 1)
      let length = 0
      while (length <= size) {
        const read = readSync(fd, data, length, size + 1 - length, null)
        if (read === 0) break
        length += read
      }
      return length > size ? undefined : data.subarray(0, length)
    } catch (error) {
      throw mapFsError(error, `cannot read ${path}`)
    } finally {
      closeSync(fd)
    }
  }

  /**
   * write() for a small file given whole, without a stream: the bytes go
   * into the temporary file with one synchronous write (page-cache work)
   * and it is closed the same way. What touches the destination's
   * directory (its checks, creating the file, moving it into place) and
   * the fsync stay on the thread pool: while other files of the directory
   * are created and fsync'd, a synchronous create or stat there waited on
   * them and blocked the event loop for about half a millisecond a file.
   * The entry is the temporary file's own stat (same inode).
   */
  async writeWhole(path: string, data: Buffer, options: WriteOptions = {}): Promise<Entry> {
    const what = `cannot write ${path}`
    const names = namesIn(options.expect)
    if (names.length > 0) verifyDigests(what, Object.fromEntries(names.map((name) => [name, createHash(name).update(data).digest('hex')])), options.expect)
    await this.prepareDestination(path, Boolean(options.overwrite), what)
    const temp = this.tempPath(path)
    const untrack = trackPartial(temp)
    let fd = -1
    let stats: Stats
    try {
      fd = await new Promise<number>((resolve, reject) => open(temp, 'wx', 0o644, (error, opened) => (error ? reject(error) : resolve(opened))))
      for (let written = 0; written < data.length; ) written += writeSync(fd, data, written, data.length - written)
      const opened = fd
      await new Promise<void>((resolve, reject) => fsync(opened, (error) => (error ? reject(error) : resolve())))
      stats = fstatSync(fd)
      closeSync(fd)
      fd = -1
    } catch (error) {
      if (fd >= 0) closeSync(fd)
      rmSync(temp, {force: true})
      untrack()
      throw mapFsError(error, what)
    }

    await this.commit(temp, path, Boolean(options.overwrite), what).finally(untrack)
    options.onProgress?.(data.length)
    return this.toEntry(path, stats)
  }

  async write(path: string, source: Readable, options: WriteOptions = {}): Promise<Entry> {
    const what = `cannot write ${path}`
    await this.prepareDestination(path, Boolean(options.overwrite), what)
    const temp = this.tempPath(path)
    const untrack = trackPartial(temp)
    let out: Writable | undefined
    try {
      // A self-verifying source fails the pipeline on a mismatch by itself.
      const hashing = new HashingStream((total) => options.onProgress?.(total), isSelfVerifying(source) ? [] : namesIn(options.expect))
      // Flushed to disk in the background as it grows and fsync'd at its end, so what is renamed into place is on disk.
      // Each chunk written goes back to a source that lent it (a cluster download's recycled piece buffers).
      out = recycleWhenWritten(new FileWriter(temp))
      await pipeline(source, hashing, out, {signal: options.signal})
      verifyDigests(what, hashing.digests(), options.expect)
    } catch (error) {
      await removeTemp(temp, out)
      untrack()
      throw mapFsError(error, what)
    }

    await this.commit(temp, path, Boolean(options.overwrite), what).finally(untrack)
    return this.stat(path)
  }

  async writeFrom(path: string, fill: (sink: FileSink) => Promise<Partial<Record<HashName, string>>>, options: WriteOptions = {}): Promise<Entry> {
    const what = `cannot write ${path}`
    await this.prepareDestination(path, Boolean(options.overwrite), what)
    const temp = this.tempPath(path)
    const untrack = trackPartial(temp)
    let handle: FileHandle | undefined
    try {
      // Read-write: the filler may read back what it wrote (to hash it in order).
      handle = await fs.open(temp, 'wx+', 0o644)
      const flush = new BackgroundFlush(handle.fd)
      const digests = await fill({fd: handle.fd, wrote: (bytes) => flush.wrote(bytes)}).finally(() => flush.settled())
      verifyDigests(what, digests, options.expect)
      await flush.finish()
      await handle.close()
    } catch (error) {
      await handle?.close().catch(() => {})
      await fs.rm(temp, {force: true})
      untrack()
      throw mapFsError(error, what)
    }

    await this.commit(temp, path, Boolean(options.overwrite), what).finally(untrack)
    return this.stat(path)
  }

  async copy(src: string, dst: string, options: TransferOptions = {}): Promise<Entry> {
    const what = `cannot copy ${src} to ${dst}`
    const entry = await this.stat(src)
    if (isWithin(dst, src)) throw new UsageError(`${what}: destination is inside the source`)
    await this.prepareDestination(dst, Boolean(options.overwrite), what)
    if (entry.type === 'dir') {
      try {
        await fs.cp(this.real(src), this.real(dst), {recursive: true, errorOnExist: true, force: false})
      } catch (error) {
        throw mapFsError(error, what)
      }

      return this.stat(dst)
    }

    const temp = this.tempPath(dst)
    const out = createWriteStream(temp, {flags: 'wx'})
    try {
      await pipeline(createReadStream(this.real(src)), out)
    } catch (error) {
      await removeTemp(temp, out)
      throw mapFsError(error, what)
    }

    await this.commit(temp, dst, Boolean(options.overwrite), what)
    return this.stat(dst)
  }

  async move(src: string, dst: string, options: TransferOptions = {}): Promise<Entry> {
    const what = `cannot move ${src} to ${dst}`
    if (src === '/') throw new UsageError(`${what}: cannot move the root`)
    const entry = await this.stat(src)
    if (isWithin(dst, src)) throw new UsageError(`${what}: destination is inside the source`)
    await this.prepareDestination(dst, Boolean(options.overwrite), what)
    try {
      if (entry.type === 'file' && !options.overwrite) {
        // link + unlink refuses an existing destination atomically, unlike rename.
        await fs.link(this.real(src), this.real(dst))
        await fs.unlink(this.real(src))
      } else {
        await fs.rename(this.real(src), this.real(dst))
      }
    } catch (error) {
      throw mapFsError(error, what)
    }

    return this.stat(dst)
  }

  async about(): Promise<About> {
    const stats = await fs.statfs(this.root)
    const total = stats.blocks * stats.bsize
    return {total, used: total - stats.bfree * stats.bsize, free: stats.bavail * stats.bsize, trash: null}
  }
}

export const createLocalBackend: BackendFactory = async (settings) => {
  try {
    await fs.mkdir(settings.localRoot, {recursive: true})
  } catch (error) {
    throw mapFsError(error, `cannot create the local root ${settings.localRoot}`, 'dir')
  }

  return new LocalBackend(await fs.realpath(settings.localRoot))
}

/**
 * Removes a temporary file after a failed pipeline. The pipeline rejects as
 * soon as its source fails, possibly before the write stream has even opened
 * (and so created) the file: wait for the stream to close first, or the file
 * would appear after the removal and be left behind.
 */
async function removeTemp(temp: string, out: Writable | undefined): Promise<void> {
  if (out && !out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()))
  await fs.rm(temp, {force: true})
}
