/**
 * Torrent storage: pieces ↔ files by byte ranges.
 *
 * - `ContentSource` reads ranges of a torrent's content for seeding, from a
 *   local file or folder or from any backend path: the local filesystem by
 *   positional reads, the cluster by its content pieces (a few cached), any
 *   other backend by a stream that is skipped forward and reused while reads
 *   run in order.
 * - `PartialContent` is a download in progress: a hidden `.NAME.part`
 *   folder beside the target holds the files being filled and a resume record
 *   of verified pieces; `finish` renames it into place only when every piece
 *   is verified (or, for a backend target, uploads the files through the
 *   adapter, after full verification, from a partial folder in the system
 *   temporary folder).
 */
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import nodePath from 'node:path'
import type {Readable} from 'node:stream'

import type {StorageAdapter} from '../backends/adapter.js'
import {ConflictError, IntegrityError, NotFoundError, TemporaryError, UsageError} from '../base/index.js'
import {joinPath, parentOf} from '../backends/remote-path.js'
import type {Metainfo, TorrentFile} from './metainfo.js'

/** One file's bytes by range. */
interface RangeFile {
  read(offset: number, length: number): Promise<Buffer>
  close(): Promise<void>
}

/** The parts of the files that make up [offset, offset + length) of the content. */
export function spans(files: TorrentFile[], offset: number, length: number): Array<{file: number; offset: number; length: number; at: number}> {
  const out: Array<{file: number; offset: number; length: number; at: number}> = []
  const end = offset + length
  for (const [i, file] of files.entries()) {
    const fileEnd = file.offset + file.length
    if (fileEnd <= offset || file.length === 0) continue
    if (file.offset >= end) break
    const start = Math.max(offset, file.offset)
    const stop = Math.min(end, fileEnd)
    out.push({file: i, offset: start - file.offset, length: stop - start, at: start - offset})
  }
  return out
}

class LocalRangeFile implements RangeFile {
  private handle?: Promise<fs.FileHandle>
  constructor(private readonly path: string) {}

  async read(offset: number, length: number): Promise<Buffer> {
    this.handle ??= fs.open(this.path, 'r')
    const handle = await this.handle
    const buf = Buffer.allocUnsafe(length)
    let done = 0
    while (done < length) {
      const {bytesRead} = await handle.read(buf, done, length - done, offset + done)
      if (bytesRead === 0) throw new IntegrityError(`${this.path} is shorter than the torrent says`)
      done += bytesRead
    }
    return buf
  }

  async close(): Promise<void> {
    if (this.handle) await (await this.handle.catch(() => undefined))?.close()
  }
}

/** The folder behind the local backend (`local:/a` is ROOT/a), read directly by positional reads. */
function localRoot(adapter: StorageAdapter): string | undefined {
  const root = (adapter as {root?: unknown}).root
  return adapter.name === 'local' && typeof root === 'string' ? root : undefined
}

interface ClusterLike {
  manifestOf(path: string): Promise<{size: number; pieceSize: number; pieces: string[]}>
  store: unknown
}

function isClusterLike(adapter: StorageAdapter): adapter is StorageAdapter & ClusterLike {
  return typeof (adapter as Partial<ClusterLike>).manifestOf === 'function' && 'store' in adapter
}

/** A cluster file read by its own content pieces, the last few kept. */
class ClusterRangeFile implements RangeFile {
  private manifest?: Promise<{size: number; pieceSize: number; pieces: string[]}>
  private readonly cache = new Map<number, Promise<Buffer>>()
  private ranking?: unknown

  constructor(
    private readonly adapter: StorageAdapter & ClusterLike,
    private readonly path: string,
  ) {}

  private async piece(index: number): Promise<Buffer> {
    let piece = this.cache.get(index)
    if (!piece) {
      const {fetchPiece, ReplicaRanking} = await import('../backends/cluster/pieces.js')
      const manifest = await this.manifest!
      this.ranking ??= new ReplicaRanking()
      const length = index < manifest.pieces.length - 1 ? manifest.pieceSize : manifest.size - manifest.pieceSize * index
      piece = fetchPiece(this.adapter.store as never, this.ranking as InstanceType<typeof ReplicaRanking>, manifest.pieces[index], length)
      piece.catch(() => this.cache.delete(index))
      this.cache.set(index, piece)
      while (this.cache.size > 8) this.cache.delete(this.cache.keys().next().value!)
    }
    return piece
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.manifest ??= this.adapter.manifestOf(this.path)
    const manifest = await this.manifest
    if (offset + length > manifest.size) throw new IntegrityError(`${this.path} is shorter than the torrent says`)
    const out = Buffer.allocUnsafe(length)
    let done = 0
    while (done < length) {
      const at = offset + done
      const index = Math.floor(at / manifest.pieceSize)
      const piece = await this.piece(index)
      const within = at - index * manifest.pieceSize
      const n = Math.min(length - done, piece.length - within)
      piece.copy(out, done, within, within + n)
      done += n
    }
    return out
  }

  async close(): Promise<void> {
    this.cache.clear()
  }
}

/** Any backend: one stream, skipped forward; reopened when a read goes backwards. */
class StreamRangeFile implements RangeFile {
  private stream?: Readable
  private iterator?: AsyncIterator<Buffer>
  private position = 0
  private leftover: Buffer = Buffer.alloc(0)
  private queue: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly adapter: StorageAdapter,
    private readonly path: string,
  ) {}

  read(offset: number, length: number): Promise<Buffer> {
    const result = this.queue.then(() => this.readNow(offset, length))
    this.queue = result.catch(() => {})
    return result
  }

  private async readNow(offset: number, length: number): Promise<Buffer> {
    if (!this.iterator || offset < this.position) {
      this.stream?.destroy()
      this.stream = await this.adapter.openRead(this.path)
      this.iterator = this.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
      this.position = 0
      this.leftover = Buffer.alloc(0)
    }
    const parts: Buffer[] = []
    let have = 0
    while (have < length) {
      if (this.leftover.length === 0) {
        const {value, done} = await this.iterator.next()
        if (done) throw new IntegrityError(`${this.path} is shorter than the torrent says`)
        this.leftover = value
      }
      const skip = Math.max(0, offset - this.position)
      if (skip >= this.leftover.length) {
        this.position += this.leftover.length
        this.leftover = Buffer.alloc(0)
        continue
      }
      const take = Math.min(this.leftover.length - skip, length - have)
      parts.push(this.leftover.subarray(skip, skip + take))
      have += take
      this.position += skip + take
      this.leftover = this.leftover.subarray(skip + take)
    }
    return Buffer.concat(parts, length)
  }

  async close(): Promise<void> {
    this.stream?.destroy()
  }
}

/** Where a torrent's content is read from when seeding. */
export interface SourceLocation {
  /** Set for a backend path; absent for a path on this machine. */
  adapter?: StorageAdapter
  /** The file (single-file torrent) or the top folder (multi-file). */
  path: string
}

/** Reads ranges of a torrent's concatenated content. */
export class ContentSource {
  private readonly files: RangeFile[]

  constructor(
    readonly meta: Metainfo,
    location: SourceLocation,
  ) {
    this.files = meta.files.map((file) => {
      const parts = meta.multiFile ? file.path : []
      if (!location.adapter) return new LocalRangeFile(nodePath.join(location.path, ...parts))
      const path = parts.reduce((dir, part) => joinPath(dir, part), location.path)
      const root = localRoot(location.adapter)
      if (root !== undefined) return new LocalRangeFile(nodePath.join(root, path))
      return isClusterLike(location.adapter) ? new ClusterRangeFile(location.adapter, path) : new StreamRangeFile(location.adapter, path)
    })
  }

  /** Checks that every file exists with the right size (a clear error before any hashing). */
  static async open(meta: Metainfo, location: SourceLocation): Promise<ContentSource> {
    for (const file of meta.files) {
      const parts = meta.multiFile ? file.path : []
      let size: number | null
      let shown: string
      if (location.adapter) {
        const path = parts.reduce((dir, part) => joinPath(dir, part), location.path)
        shown = `${location.adapter.name}:${path}`
        const entry = await location.adapter.stat(path)
        if (entry.type !== 'file') throw new UsageError(`${shown} is a directory, expected a file of ${file.length} bytes`)
        size = entry.size
      } else {
        shown = nodePath.join(location.path, ...parts)
        const stat = await fs.stat(shown).catch(() => null)
        if (!stat) throw new NotFoundError(`${shown}: no such file`, 'file')
        if (!stat.isFile()) throw new UsageError(`${shown} is not a file`)
        size = stat.size
      }
      if (size !== file.length) throw new IntegrityError(`${shown} has ${size} bytes; the torrent says ${file.length}`)
    }
    return new ContentSource(meta, location)
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.meta.length) throw new UsageError('read outside the torrent')
    const parts = spans(this.meta.files, offset, length)
    if (parts.length === 1) return this.files[parts[0].file].read(parts[0].offset, length)
    // Every part is asked for at once, so each file sees its reads in the order they were issued.
    const out = Buffer.alloc(length)
    const chunks = await Promise.all(parts.map((part) => this.files[part.file].read(part.offset, part.length)))
    for (const [i, part] of parts.entries()) chunks[i].copy(out, part.at)
    return out
  }

  readPiece(index: number): Promise<Buffer> {
    const start = index * this.meta.pieceLength
    return this.read(start, Math.min(this.meta.pieceLength, this.meta.length - start))
  }

  /** Hashes every piece in order; returns the indexes that do not match. Stops early (TemporaryError) when `signal` aborts. */
  async verify(onPiece?: (index: number, ok: boolean) => void, signal?: AbortSignal): Promise<number[]> {
    const bad: number[] = []
    const ahead: Array<Promise<Buffer>> = []
    const count = this.meta.pieces.length
    let next = 0
    const readNext = (): void => {
      const read = this.readPiece(next++)
      read.catch(() => {})
      ahead.push(read)
    }
    while (next < count && ahead.length < 4) readNext()
    for (let i = 0; i < count; i++) {
      if (signal?.aborted) throw new TemporaryError(`interrupted while checking piece ${i} of ${count}`)
      const data = await ahead.shift()!
      if (next < count) readNext()
      const ok = createHash('sha1').update(data).digest().equals(this.meta.pieces[i])
      if (!ok) bad.push(i)
      onPiece?.(i, ok)
    }
    return bad
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((file) => file.close()))
  }
}

interface ResumeRecord {
  infoHash: string
  pieces: string
}

/** Where a download goes: a local folder, or a backend folder. */
export interface TargetLocation {
  adapter?: StorageAdapter
  /** The folder the content goes into (DEST). */
  dir: string
  /** How the target is shown in messages. */
  shown: string
}

/**
 * A download in progress. Pieces are written into a hidden partial folder
 * (files laid out as in the torrent); `resume.json` lists the verified
 * pieces. Nothing appears at the target until `finish`.
 */
export class PartialContent {
  private readonly handles = new Map<number, Promise<fs.FileHandle>>()
  private readonly verified: Uint8Array
  private saveTimer?: NodeJS.Timeout
  private saving: Promise<void> = Promise.resolve()
  /** Bytes of verified pieces found at start (resume). */
  resumedBytes = 0

  private constructor(
    readonly meta: Metainfo,
    readonly target: TargetLocation,
    /** The hidden working folder. */
    readonly partDir: string,
  ) {
    this.verified = new Uint8Array(meta.pieces.length)
  }

  /** The final path of the content on its target. */
  get finalPath(): string {
    return this.target.adapter ? joinPath(this.target.dir, this.meta.name) : nodePath.join(this.target.dir, this.meta.name)
  }

  private get contentRoot(): string {
    return nodePath.join(this.partDir, 'content')
  }

  private filePath(file: TorrentFile): string {
    return this.meta.multiFile ? nodePath.join(this.contentRoot, this.meta.name, ...file.path) : nodePath.join(this.contentRoot, this.meta.name)
  }

  /**
   * Prepares the partial folder (creating it, or resuming from it) after
   * checking that the target folder exists and nothing is at the final path.
   */
  static async open(meta: Metainfo, given: TargetLocation): Promise<PartialContent> {
    // A local-backend folder is a folder on this machine: the content is renamed into place there too.
    const root = given.adapter ? localRoot(given.adapter) : undefined
    const target: TargetLocation = root === undefined ? given : {dir: nodePath.join(root, given.dir), shown: given.shown}
    let partDir: string
    if (target.adapter) {
      const dir = await target.adapter.stat(target.dir).catch((error: unknown) => {
        if (error instanceof NotFoundError) throw new NotFoundError(`${target.shown}: no such folder`, 'dir')
        throw error
      })
      if (dir.type !== 'dir') throw new ConflictError(`${target.shown} is not a folder`, 'not-directory')
      const existing = await target.adapter.stat(joinPath(target.dir, meta.name)).catch(() => null)
      if (existing) throw new ConflictError(`${target.shown}/${meta.name} already exists`, 'exists')
      partDir = nodePath.join(os.tmpdir(), 'disk-client-torrent', `${target.adapter.name}-${meta.infoHashHex}`)
    } else {
      const stat = await fs.stat(target.dir).catch(() => null)
      if (!stat) throw new NotFoundError(`${target.shown}: no such folder`, 'dir')
      if (!stat.isDirectory()) throw new ConflictError(`${target.shown} is not a folder`, 'not-directory')
      if (await fs.lstat(nodePath.join(target.dir, meta.name)).catch(() => null)) {
        throw new ConflictError(`${nodePath.join(target.dir, meta.name)} already exists`, 'exists')
      }
      partDir = nodePath.join(target.dir, `.${meta.name}.part`)
    }
    const partial = new PartialContent(meta, target, partDir)
    await partial.prepare()
    return partial
  }

  private async prepare(): Promise<void> {
    await fs.mkdir(this.contentRoot, {recursive: true})
    for (const file of this.meta.files) {
      const path = this.filePath(file)
      await fs.mkdir(nodePath.dirname(path), {recursive: true})
      const handle = await fs.open(path, 'a')
      await handle.close()
      const stat = await fs.stat(path)
      if (stat.size > file.length) await fs.truncate(path, file.length)
    }
    const record = await fs
      .readFile(nodePath.join(this.partDir, 'resume.json'), 'utf8')
      .then((text) => JSON.parse(text) as ResumeRecord)
      .catch(() => null)
    if (!record || record.infoHash !== this.meta.infoHashHex) return
    const bits = Buffer.from(record.pieces, 'base64')
    // Claimed pieces are re-hashed: a record never vouches for bytes on its own.
    for (let i = 0; i < this.meta.pieces.length; i++) {
      if (!(bits[i >> 3] & (0x80 >> (i & 7)))) continue
      const data = await this.readPiece(i).catch(() => null)
      if (data && createHash('sha1').update(data).digest().equals(this.meta.pieces[i])) {
        this.verified[i] = 1
        this.resumedBytes += data.length
      }
    }
  }

  has(index: number): boolean {
    return this.verified[index] === 1
  }

  get complete(): boolean {
    return this.verified.every((v) => v === 1)
  }

  private handle(fileIndex: number): Promise<fs.FileHandle> {
    let handle = this.handles.get(fileIndex)
    if (!handle) {
      handle = fs.open(this.filePath(this.meta.files[fileIndex]), 'r+')
      this.handles.set(fileIndex, handle)
    }
    return handle
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length)
    for (const part of spans(this.meta.files, offset, length)) {
      const handle = await this.handle(part.file)
      let done = 0
      while (done < part.length) {
        const {bytesRead} = await handle.read(out, part.at + done, part.length - done, part.offset + done)
        if (bytesRead === 0) throw new IntegrityError('partial file is short')
        done += bytesRead
      }
    }
    return out
  }

  readPiece(index: number): Promise<Buffer> {
    const start = index * this.meta.pieceLength
    return this.read(start, Math.min(this.meta.pieceLength, this.meta.length - start))
  }

  /** Writes a piece whose hash the caller has checked, and records it. */
  async writePiece(index: number, data: Buffer): Promise<void> {
    const start = index * this.meta.pieceLength
    for (const part of spans(this.meta.files, start, data.length)) {
      const handle = await this.handle(part.file)
      let done = 0
      while (done < part.length) {
        const {bytesWritten} = await handle.write(data, part.at + done, part.length - done, part.offset + done)
        done += bytesWritten
      }
    }
    this.verified[index] = 1
    this.saveSoon()
  }

  private saveSoon(): void {
    if (this.saveTimer) return
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined
      void this.save()
    }, 500)
  }

  /** Writes the resume record (atomically: a temp file renamed over it). */
  save(): Promise<void> {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer)
      this.saveTimer = undefined
    }
    const bits = Buffer.alloc(Math.ceil(this.verified.length / 8))
    for (let i = 0; i < this.verified.length; i++) if (this.verified[i]) bits[i >> 3] |= 0x80 >> (i & 7)
    const record: ResumeRecord = {infoHash: this.meta.infoHashHex, pieces: bits.toString('base64')}
    const file = nodePath.join(this.partDir, 'resume.json')
    this.saving = this.saving
      .then(async () => {
        await fs.writeFile(file + '.tmp', JSON.stringify(record))
        await fs.rename(file + '.tmp', file)
      })
      .catch(() => {})
    return this.saving
  }

  async closeFiles(): Promise<void> {
    const handles = [...this.handles.values()]
    this.handles.clear()
    for (const handle of handles) await (await handle.catch(() => undefined))?.close()
  }

  /** Stops, keeping the partial folder and an up-to-date resume record. */
  async suspend(): Promise<void> {
    await this.save()
    await this.closeFiles()
  }

  /**
   * Every piece verified: moves the content into place (a rename for a local
   * target; an upload per file for a backend) and removes the partial folder.
   */
  async finish(onUpload?: (bytes: number) => void): Promise<string> {
    if (!this.complete) throw new IntegrityError('cannot finish a download with unverified pieces')
    await this.save()
    await this.closeFiles()
    const source = nodePath.join(this.contentRoot, this.meta.name)
    if (!this.target.adapter) {
      const final = this.finalPath
      await fs.rename(source, final).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'EEXIST' || error.code === 'ENOTEMPTY') throw new ConflictError(`${final} already exists`, 'exists')
        throw error
      })
      await fs.rm(this.partDir, {recursive: true, force: true})
      return final
    }
    const adapter = this.target.adapter
    const top = joinPath(this.target.dir, this.meta.name)
    const made = new Set<string>()
    const ensureDir = async (dir: string): Promise<void> => {
      if (dir === this.target.dir || made.has(dir)) return
      await ensureDir(parentOf(dir))
      await adapter.mkdir(dir).catch((error: unknown) => {
        if (!(error instanceof ConflictError)) throw error
      })
      made.add(dir)
    }
    for (const file of this.meta.files) {
      const path = this.meta.multiFile ? file.path.reduce((dir, part) => joinPath(dir, part), top) : top
      await ensureDir(parentOf(path))
      let sent = 0
      await adapter.write(path, createReadStream(this.filePath(file)), {
        size: file.length,
        onProgress: (bytes) => {
          onUpload?.(bytes - sent)
          sent = bytes
        },
      })
    }
    await fs.rm(this.partDir, {recursive: true, force: true})
    return `${adapter.name}:${top}`
  }
}
