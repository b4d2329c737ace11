/**
 * Large values live in files of their own ("blobs"), with only their header
 * and size in LevelDB: the WiscKey split. LevelDB copies every value into
 * its log, then into a table, then again at each compaction; for megabyte
 * file pieces that cost the servers most of their CPU and disk bandwidth.
 * A blob is written once and read with one file read.
 *
 * A blob's name comes from its key and version, `blobs/ab/<sha256(key)>-<version>`,
 * so it needs no index: the header in LevelDB says which version is current.
 * A blob is written before the batch that makes it current, and the blob of
 * a replaced version is removed only after that batch: a crash in between
 * leaves an unreferenced file, which the next start sweeps away, and never
 * a header without its file.
 */
import {createHash} from 'node:crypto'
import {closeSync, openSync} from 'node:fs'
import {mkdir, open, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {dropFromPageCache, writeAllAtSync} from '../base/index.js'

import type {BufferPool} from './resp.js'

/** Values of this size and above are stored as blobs. Smaller ones stay in LevelDB (and the read cache). */
export const BLOB_MIN_BYTES = 64 * 1024 + 1

export class BlobStore {
  readonly dir: string
  private readonly made = new Set<string>()
  /** Blobs written since the last sync (without syncWrites, they are fsync'd with LevelDB's log, once a second). */
  private unsynced = new Set<string>()
  /** Their bytes: past WRITE_BEHIND_BYTES, a sync starts at once (see write). */
  private unsyncedBytes = 0
  /** The sync under way (syncs run one after another, see sync). */
  private syncing: Promise<void> = Promise.resolve()
  private writingBehind = false

  /**
   * @param syncEach fsync each blob (and its folder) before its write resolves.
   * @param inline write each blob on this thread in writes of 64 KiB
   *   (`writeAllAtSync`), instead of `fs.writeFile` in libuv's pool (512 KiB
   *   per write). Measured on a 3-server cluster, 1 GiB uploads (docs/cluster-files.md,
   *   round 7): the servers' CPU fell from 7.1–9.4 s to 4.5–5.8 s. Both
   *   halves are needed: 64 KiB writes in the pool gave 5.8–7.7 s (a
   *   hand-off per 64 KiB), 512 KiB writes on this thread 7.9–8.6 s (the
   *   kernel's large page-cache folios, src/base/file-write.ts). In the
   *   embedded mode, whose main thread hashes the upload, the pool's
   *   writeFile measured best.
   */
  constructor(
    dataDir: string,
    private readonly syncEach: boolean,
    private readonly inline = false,
  ) {
    this.dir = path.join(dataDir, 'blobs')
  }

  /** The name of the blob of `key` at `version`. */
  name(key: Buffer, version: number): string {
    return `${createHash('sha256').update(key).digest('hex')}-${version}`
  }

  private pathOf(name: string): string {
    return path.join(this.dir, name.slice(0, 2), name)
  }

  async write(name: string, data: Buffer): Promise<void> {
    const file = this.pathOf(name)
    const folder = path.dirname(file)
    if (!this.made.has(folder)) {
      await mkdir(folder, {recursive: true})
      this.made.add(folder)
    }

    if (!this.syncEach) {
      if (this.inline) writeNewSync(file, data)
      else await writeFile(file, data)
      this.unsynced.add(file)
      this.unsyncedBytes += data.length
      // Write-behind: once a few pieces' worth is unsynced, it goes to the
      // disk now, beside the writes, rather than all at the next periodic
      // sync or at close (a 1 GiB embedded upload waited 540-680 ms at its
      // close for that second's blobs). Nothing waits for it here; the
      // write is acknowledged as before, once its file is written.
      if (this.unsyncedBytes >= WRITE_BEHIND_BYTES && !this.writingBehind) {
        this.writingBehind = true
        this.sync(WRITE_BEHIND_PARALLEL)
          .catch(() => undefined) // its files stay unsynced; the periodic sync retries them
          .finally(() => (this.writingBehind = false))
      }
      return
    }

    const handle = await open(file, 'w')
    try {
      if (this.inline) writeAllAtSync(handle.fd, data, 0)
      else await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }

    await syncDir(folder)
  }

  /**
   * The blob's bytes, or null if there is no such file. Throws if the file is
   * not `size` bytes long. With `pool`, they are read into a buffer from it
   * (a fresh one costs a page fault per 4 KiB), which the caller may hand
   * back once nothing uses it, and the file is dropped from the page cache
   * behind the read.
   */
  async read(name: string, size: number, pool?: BufferPool): Promise<Buffer | null> {
    if (pool && size >= pool.minBytes) return this.readInto(name, size, pool)
    let data: Buffer
    try {
      data = await readFile(this.pathOf(name))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }

    if (data.length !== size) throw new Error(`ERR blob ${name} is damaged: ${data.length} bytes where ${size} were stored`)
    return data
  }

  private async readInto(name: string, size: number, pool: BufferPool): Promise<Buffer | null> {
    const handle = await open(this.pathOf(name), 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null
      throw error
    })
    if (!handle) return null
    const data = pool.take(size)
    try {
      const actual = (await handle.stat()).size
      let filled = 0
      while (filled < size) {
        const {bytesRead} = await handle.read(data, filled, size - filled, filled)
        if (bytesRead === 0) break
        filled += bytesRead
      }
      if (actual !== size || filled !== size) throw new Error(`ERR blob ${name} is damaged: ${actual} bytes where ${size} were stored`)
      // A piece is read once per download (or repair): its pages leave the
      // page cache now rather than pushing out what is reused (LevelDB's
      // files, other processes' files), and the memory goes to the next
      // write, which is where the downloader's copy lands (see
      // src/base/page-cache.ts for what that saves).
      dropFromPageCache(handle.fd)
      return data
    } catch (error) {
      pool.release(data)
      throw error
    } finally {
      await handle.close()
    }
  }

  async remove(name: string): Promise<void> {
    const file = this.pathOf(name)
    this.unsynced.delete(file) // its bytes stay counted until the next sync
    await rm(file, {force: true})
  }

  /** How many blobs were written since the last sync. */
  get unsyncedCount(): number {
    return this.unsynced.size
  }

  /**
   * fsyncs the blobs written before this call, and their folders. Syncs run
   * one after another: one started meanwhile (write-behind, or the periodic
   * one) covers what the one before it had not taken, so when this resolves
   * every blob written before the call is on the disk. A blob whose fsync
   * failed stays unsynced for the next call, and this one rejects.
   */
  sync(parallel = SYNC_PARALLEL): Promise<void> {
    const run = this.syncing.then(() => this.syncTaken(parallel))
    this.syncing = run.catch(() => undefined)
    return run
  }

  private async syncTaken(parallel: number): Promise<void> {
    const files = this.unsynced
    this.unsynced = new Set()
    this.unsyncedBytes = 0
    const folders = new Set<string>()
    for (const file of files) folders.add(path.dirname(file))
    const failed: string[] = []
    // Several at once: each fsync waits on the disk, not on this thread.
    await inParallel([...files], parallel, async (file) => {
      const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') failed.push(file) // ENOENT: removed since (replaced or unused)
        return null
      })
      if (!handle) return
      try {
        await handle.sync()
      } catch {
        failed.push(file)
      } finally {
        await handle.close().catch(() => undefined)
      }
    })
    let folderError: unknown
    await inParallel([...folders], parallel, (folder) =>
      syncDir(folder).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return // removed since, with its files
        folderError ??= error
        for (const file of files) if (path.dirname(file) === folder) failed.push(file)
      }),
    )
    if (failed.length > 0) {
      for (const file of failed) this.unsynced.add(file)
      throw folderError instanceof Error ? folderError : new Error(`ERR fsync failed for ${failed.length} blob file(s)`)
    }
  }

  /** Removes every blob not named in `live` (left by a crash between a blob write and its batch, or before a removal). */
  async sweep(live: Set<string>): Promise<number> {
    let removed = 0
    const folders = await readdir(this.dir).catch(() => [] as string[])
    for (const folder of folders) {
      const names = await readdir(path.join(this.dir, folder)).catch(() => [] as string[])
      for (const name of names) {
        if (live.has(name)) continue
        await rm(path.join(this.dir, folder, name), {force: true})
        removed++
      }
    }

    return removed
  }
}

/** fsyncs in flight at once (libuv's pool has 4 threads by default). */
const SYNC_PARALLEL = 4

/** Unsynced blob bytes that start a sync at once (write-behind): eight 4 MiB pieces. */
const WRITE_BEHIND_BYTES = 32 * 1024 * 1024
/**
 * Its fsyncs in flight at once: two thirds of libuv's pool (bin/run.js makes
 * it 12 threads), the rest keeps writing blobs and batches. The disk takes
 * several flushes at once far faster than one after another: a 1 GiB
 * embedded upload left 300 MB unsynced at its close with 2 in flight, and
 * none with 8 (its pieces as fast as with no write-behind at all, given the
 * 12 threads; with libuv's default 4 they slowed by a third).
 */
const WRITE_BEHIND_PARALLEL = Math.max(1, Math.floor(((Number(process.env.UV_THREADPOOL_SIZE) || 4) * 2) / 3))

async function inParallel<T>(items: T[], limit: number, job: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await job(items[next++])
  }
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
}

async function syncDir(folder: string): Promise<void> {
  const handle = await open(folder, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Writes `data` as the whole content of `file` (created or truncated) on this thread, 64 KiB per write. */
function writeNewSync(file: string, data: Buffer): void {
  const fd = openSync(file, 'w')
  try {
    writeAllAtSync(fd, data, 0)
  } finally {
    closeSync(fd)
  }
}
