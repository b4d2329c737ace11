/**
 * Torrent creation (v1, BEP 3) from a file or folder on any backend. The
 * content is streamed once, file after file, through one running SHA-1 that
 * is cut at piece boundaries, so memory stays at one read chunk whatever the
 * size.
 */
import {createHash, type Hash} from 'node:crypto'

import type {Entry, StorageAdapter} from '../backends/adapter.js'
import {IntegrityError, UsageError} from '../base/index.js'
import {walk} from '../ops/tree.js'
import {encode} from './bencode.js'
import {encodeTorrent, type Metainfo, parseTorrent} from './metainfo.js'

export const MIN_PIECE_LENGTH = 16 * 1024
/** The default piece length stops growing once the piece count is at most this. */
export const MAX_DEFAULT_PIECES = 2000

export interface CreateOptions {
  /** Tracker URLs; the first becomes `announce`, all of them `announce-list`. */
  announce?: string[]
  /** A power of two, at least 16 KiB; default: see defaultPieceLength. */
  pieceLength?: number
  /** The torrent's name; default: the source's last path segment. */
  name?: string
  /** Called once with the content's total size, before hashing starts. */
  onSize?: (bytes: number) => void
  /** Called with the number of bytes hashed by each read. */
  onProgress?: (bytes: number) => void
  signal?: AbortSignal
}

export interface CreatedTorrent {
  /** The .torrent file's bytes. */
  torrent: Buffer
  meta: Metainfo
}

/** The smallest power of two from 16 KiB that gives at most 2,000 pieces (so 1,000–2,000 for larger content). */
export function defaultPieceLength(size: number): number {
  let length = MIN_PIECE_LENGTH
  while (Math.ceil(size / length) > MAX_DEFAULT_PIECES) length *= 2
  return length
}

export function checkPieceLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < MIN_PIECE_LENGTH || (length & (length - 1)) !== 0 || length > 2 ** 30) {
    throw new UsageError(`piece length ${length} is not a power of two from 16384 to 1073741824`)
  }
}

interface SourceFile {
  /** Path on the adapter. */
  at: string
  /** Path inside the torrent. */
  path: string[]
  length: number
}

async function sourceFiles(adapter: StorageAdapter, root: Entry): Promise<SourceFile[]> {
  if (root.type === 'file') return [{at: root.path, path: [], length: root.size ?? 0}]
  const files: SourceFile[] = []
  const prefix = root.path === '/' ? 1 : root.path.length + 1
  for await (const entry of walk(adapter, root.path)) {
    if (entry.type !== 'file') continue
    files.push({at: entry.path, path: entry.path.slice(prefix).split('/'), length: entry.size ?? 0})
  }
  // Byte order of the paths, so the same folder always gives the same info-hash.
  files.sort((a, b) => Buffer.compare(Buffer.from(a.path.join('/')), Buffer.from(b.path.join('/'))))
  if (files.length === 0) throw new UsageError(`${root.path} holds no files to share`)
  return files
}

/** Hashes a stream of content into pieces of `pieceLength`. */
class PieceHasher {
  readonly pieces: Buffer[] = []
  private hash: Hash = createHash('sha1')
  private filled = 0

  constructor(private readonly pieceLength: number) {}

  update(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      const take = Math.min(chunk.length - at, this.pieceLength - this.filled)
      this.hash.update(chunk.subarray(at, at + take))
      this.filled += take
      at += take
      if (this.filled === this.pieceLength) this.cut()
    }
  }

  finish(): Buffer[] {
    if (this.filled > 0) this.cut()
    return this.pieces
  }

  private cut(): void {
    this.pieces.push(this.hash.digest())
    this.hash = createHash('sha1')
    this.filled = 0
  }
}

/** Builds the .torrent of the file or folder at `path` on `adapter`. */
export async function createTorrent(adapter: StorageAdapter, path: string, options: CreateOptions = {}): Promise<CreatedTorrent> {
  const root = await adapter.stat(path)
  const name = options.name ?? root.name
  if (!name) throw new UsageError('the source is a root folder: give the torrent a --name')
  if (name === '.' || name === '..' || /[/\\\0]/.test(name)) throw new UsageError(`"${name}" cannot be a torrent name`)
  const files = await sourceFiles(adapter, root)
  const size = files.reduce((sum, file) => sum + file.length, 0)
  const pieceLength = options.pieceLength ?? defaultPieceLength(size)
  checkPieceLength(pieceLength)

  options.onSize?.(size)
  const hasher = new PieceHasher(pieceLength)
  for (const file of files) {
    let read = 0
    const stream = await adapter.openRead(file.at, {signal: options.signal})
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      read += chunk.length
      if (read > file.length) break
      hasher.update(chunk)
      options.onProgress?.(chunk.length)
    }
    if (read !== file.length) {
      stream.destroy()
      throw new IntegrityError(`${file.at} changed while it was hashed (${file.length} bytes listed, ${read > file.length ? 'more' : read} read)`)
    }
  }

  const info: Record<string, unknown> = {name, 'piece length': pieceLength, pieces: Buffer.concat(hasher.finish())}
  if (root.type === 'file') info.length = size
  else info.files = files.map((file) => ({length: file.length, path: file.path}))
  const torrent = encodeTorrent(encode(info), options.announce ?? [], {createdBy: 'disk-client', creationDate: Math.floor(Date.now() / 1000)})
  return {torrent, meta: parseTorrent(torrent)}
}
