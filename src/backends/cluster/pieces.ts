import {Readable} from 'node:stream'

import {DirectWriter, FILE_WRITE_BYTES, writeAllAtSync} from '../../base/index.js'
import {BufferPool} from '../../kv/resp.js'
import type {FileSink} from '../adapter.js'
import {IntegrityError, TemporaryError} from '../errors.js'
import {markSelfVerifying} from '../hashing.js'
import {markRecyclable, recycle} from '../recycle.js'
import {allocShared, FileHash, pieceHasher, SHARED_LENT_UPLOAD_BYTES} from './hasher.js'
import {gcRunning, type UploadIntent} from './intents.js'
import {type Manifest, PIECE_DB, PIECE_SIZE, pieceKey, pieceLength} from './manifest.js'
import type {ClusterStore} from './store.js'

/** Pieces in flight in an upload (8 MiB of 1 MiB pieces, 32 MiB of a large file's 4 MiB ones). */
export const PIECES_IN_FLIGHT = 8

/**
 * Bytes of pieces in flight in a download, whatever the piece size (16 of
 * 1 MiB, 4 of 4 MiB; at least 2). 8 MiB (2 pieces of 4 MiB) left the
 * writing thread waiting for pieces: 1 GiB from 3 servers took 2.49–2.66 s
 * with 8 MiB, 2.25–2.37 s with 16, and 2.68–3.17 s with 32 (past the
 * shared memory lent to the hashing worker); docs/cluster-files.md, round 7.
 */
const DOWNLOAD_BYTES_IN_FLIGHT = 16 * 1024 * 1024

/**
 * Splits a stream into fixed-size pieces without holding more than one
 * piece at a time (besides those in flight), in buffers from `pool`.
 */
async function* cutPieces(source: AsyncIterable<Buffer>, pieceSize: number, pool: BufferPool): AsyncGenerator<Buffer> {
  let piece = pool.take(pieceSize)
  let filled = 0
  for await (const chunk of source) {
    if (filled === 0 && chunk.length === pieceSize) {
      // A chunk that is exactly one piece (a file read in piece-sized chunks) goes on as it is,
      // without a copy; it goes back to its source once stored (uploadPieces).
      yield chunk
      continue
    }
    let offset = 0
    while (offset < chunk.length) {
      const n = Math.min(pieceSize - filled, chunk.length - offset)
      chunk.copy(piece, filled, offset, offset + n)
      filled += n
      offset += n
      if (filled === pieceSize) {
        yield piece
        piece = pool.take(pieceSize)
        filled = 0
      }
    }
    // Its bytes are all copied: the source may reuse it (recycle.ts).
    recycle(chunk)
  }

  if (filled > 0) yield piece.subarray(0, filled)
  else pool.release(piece)
}

/**
 * Piece buffers of uploads. A piece's buffer is reused once the piece is
 * stored (its reply came back, so the socket is done with it): fresh buffers
 * cost a page fault per 4 KiB, more than copying into them. In shared
 * memory, so that the worker thread hashes each piece where it is
 * (hasher.ts). One pool for the process, not one per upload: a server that
 * takes one upload after another (serve webdav's PUTs) would otherwise leave
 * each upload's shared buffers to the garbage collector, which does not count
 * them as memory pressure (RSS grew by tens of MB with each PUT). It keeps
 * one upload's worth (10 pieces) for the next.
 */
const uploadPool = new BufferPool(0, PIECES_IN_FLIGHT + 2, allocShared, SHARED_LENT_UPLOAD_BYTES)

export interface UploadOptions {
  onProgress?: (bytes: number) => void
  pieceSize?: number
  /** The stream's size when known: a large one is hashed on the worker from its first piece (FileHash.open). */
  size?: number
}

/**
 * Stores a stream as content-addressed pieces, several in flight, and
 * returns its manifest. A piece the cluster already holds is not sent again,
 * unless a gc is running. Every piece is named in the upload's intent before
 * anything relies on it.
 */
export async function uploadPieces(
  store: ClusterStore,
  intent: UploadIntent,
  source: Readable,
  options: UploadOptions = {},
): Promise<Manifest & {stored: number; reused: number}> {
  const pieceSize = options.pieceSize ?? PIECE_SIZE
  const fileHash = await FileHash.open(options.size)
  const pieces: string[] = []
  let size = 0
  let stored = 0
  let reused = 0
  let gcCheckedAt = 0
  let dedup = true
  const inFlight = new Set<Promise<void>>()
  let failure: unknown
  const pool = uploadPool

  const sendPiece = async (hash: string, piece: Buffer): Promise<void> => {
    await intent.add([hash])
    if (Date.now() - gcCheckedAt > 1000) {
      gcCheckedAt = Date.now()
      dedup = !(await gcRunning(store))
    }

    const [exists] = dedup ? await store.existsMany(PIECE_DB, [pieceKey(hash)]) : [false]
    if (exists) reused++
    else {
      await store.set(PIECE_DB, pieceKey(hash), piece)
      stored++
    }
  }

  try {
    for await (const piece of cutPieces(source as AsyncIterable<Buffer>, pieceSize, pool)) {
      if (failure) break
      // The piece's hash and the file's, in order, on the worker (FileHash).
      const index = pieces.push('') - 1
      const hashing = fileHash.add(piece)
      size += piece.length
      const task: Promise<void> = hashing
        .then((hash) => {
          pieces[index] = hash
          return sendPiece(hash, piece)
        })
        .then(() => {
          pool.release(piece)
          recycle(piece)
        })
        .catch((error: unknown) => {
          failure ??= error
        })
        .finally(() => {
          inFlight.delete(task)
          options.onProgress?.(size)
        })
      inFlight.add(task)
      if (inFlight.size >= PIECES_IN_FLIGHT) await Promise.race(inFlight)
    }
  } catch (error) {
    // The source failed: the worker's state for this file goes (the pieces in flight are hashed first, in order).
    fileHash.discard()
    throw error
  }

  await Promise.all(inFlight)
  if (failure) {
    fileHash.discard()
    throw failure
  }

  return {size, pieceSize, pieces, sha256: await fileHash.digest(), stored, reused}
}

/** Per-server latency, so each piece is asked first of the replica that has answered fastest. */
export class ReplicaRanking {
  private readonly latency = new Map<string, number>()

  /**
   * The order to ask a piece's replicas in. With `spread` (the piece's
   * index), the replicas that have not failed take turns being first, so
   * every server reads and sends its share of a file at once (fastest-first
   * left one server of three idle; round 5); failed ones come last.
   * Without it, fastest first.
   */
  order(addresses: string[], spread?: number): string[] {
    if (spread !== undefined && addresses.length > 1) {
      const failed = (address: string) => this.latency.get(address) === Number.POSITIVE_INFINITY
      const live = addresses.filter((address) => !failed(address))
      if (live.length > 1) {
        const first = spread % live.length
        return [...live.slice(first), ...live.slice(0, first), ...addresses.filter(failed)]
      }
    }
    return [...addresses].sort((a, b) => (this.latency.get(a) ?? 0) - (this.latency.get(b) ?? 0))
  }

  record(address: string, ms: number): void {
    const previous = this.latency.get(address)
    this.latency.set(address, previous === undefined ? ms : previous * 0.7 + ms * 0.3)
  }

  fail(address: string): void {
    this.latency.set(address, Number.POSITIVE_INFINITY)
  }
}

/** How long one replica may take over one piece before the next is asked. */
const PIECE_TIMEOUT_MS = 15_000

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TemporaryError(`${what}: stalled for ${ms} ms`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Fetches one piece straight from a server that holds it (fastest first,
 * or in turns by `spread`, see ReplicaRanking.order), switching replica on
 * an error, a stall or a bad hash, and through the router as the last
 * resort. Every piece is verified against its hash: by `verify` when given
 * (a download's in-order FileHash), else on the hashing worker. A `verify`
 * that throws PieceAbandoned ends the fetch at once.
 */
export async function fetchPiece(
  store: ClusterStore,
  ranking: ReplicaRanking,
  hash: string,
  expectedLength: number,
  spread?: number,
  verify: (data: Buffer) => Promise<boolean> = async (data) => (await pieceHasher.hash(data)) === hash,
): Promise<Buffer> {
  const key = pieceKey(hash)
  const valid = async (data: Buffer | null): Promise<boolean> => data !== null && data.length === expectedLength && verify(data)
  const replicas = ranking.order(await store.locate(PIECE_DB, key).catch(() => [] as string[]), spread)
  for (const address of replicas) {
    const started = Date.now()
    try {
      const data = await withTimeout(store.readFrom(address, PIECE_DB, key), PIECE_TIMEOUT_MS, `piece ${hash} from ${address}`)
      // The read's time, not the verification's (which may wait for the pieces before this one).
      const took = Date.now() - started
      if (data && (await valid(data))) {
        ranking.record(address, took)
        return data
      }

      if (data) store.recycle?.(data)
    } catch (error) {
      if (error instanceof PieceAbandoned) throw error
      // Dead, stalled or wrong: the next replica is asked.
    }

    ranking.fail(address)
  }

  const data = await store.get(PIECE_DB, key)
  if (data && (await valid(data))) return data
  if (data === null) throw new TemporaryError(`piece ${hash} is not available from any replica`)
  throw new IntegrityError(`piece ${hash} failed its hash check on every replica`)
}

/** Thrown by a download's verification once nobody waits for its pieces any more. */
class PieceAbandoned extends Error {}

/**
 * A file's content as a stream: pieces fetched several at a time, emitted in
 * order, each verified; the whole-file SHA-256 is checked at the end, and a
 * mismatch fails the stream rather than end it cleanly.
 */
export function downloadPieces(store: ClusterStore, manifest: Manifest, what: string): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    const fileHash = await FileHash.open(manifest.size)
    for await (const piece of verifiedPieces(store, manifest, fileHash)) {
      // The consumer that writes it to a file hands it back for the next pieces (see recycle.ts).
      if (store.recycle) markRecyclable(piece, (buffer) => store.recycle!(buffer))
      yield piece
    }

    checkWhole(manifest, await fileHash.digest(), what)
  }

  return markSelfVerifying(Readable.from(generate(), {objectMode: false}))
}

/**
 * A file's pieces in order, each verified against its hash, several fetched
 * at a time. Each piece goes into `fileHash` (its own hash and the file's,
 * in one pass) once the piece before it has: a piece that arrives early
 * waits for its turn, which costs nothing, since pieces are consumed in
 * order anyway. The caller takes the file's digest at the end; a stopped or
 * failed download discards it.
 */
async function* verifiedPieces(store: ClusterStore, manifest: Manifest, fileHash: FileHash): AsyncGenerator<Buffer> {
  const ranking = new ReplicaRanking()
  const window: Array<Promise<Buffer>> = []
  let next = 0
  let stopped = false
  // Settles once the piece before the next one to fetch is in the file's hash.
  let turn: Promise<void> = Promise.resolve()
  const fetchNext = () => {
    const index = next++
    const hash = manifest.pieces[index]
    const myTurn = turn
    let done!: () => void
    turn = new Promise<void>((resolve) => (done = resolve))
    const verify = async (data: Buffer): Promise<boolean> => {
      await myTurn
      if (stopped) throw new PieceAbandoned()
      const good = (await fileHash.add(data, hash)) === hash
      if (good) done()
      return good
    }

    const promise = fetchPiece(store, ranking, hash, pieceLength(manifest, index), index, verify)
    // A piece that cannot be had ends the download; the ones after it must not wait for it.
    promise.catch(() => {
      stopped = true
      done()
    })
    window.push(promise)
  }

  const inFlight = Math.max(2, Math.floor(DOWNLOAD_BYTES_IN_FLIGHT / Math.max(manifest.pieceSize, 1)))
  let finished = false
  try {
    while (next < manifest.pieces.length && window.length < inFlight) fetchNext()
    while (window.length > 0) {
      const piece = await window.shift()!
      if (next < manifest.pieces.length) fetchNext()
      yield piece
    }

    finished = true
  } finally {
    window.length = 0
    stopped = true
    if (!finished) fileHash.discard()
  }
}

function checkWhole(manifest: Manifest, digest: string, what: string): void {
  if (digest !== manifest.sha256) throw new IntegrityError(`${what}: sha256 mismatch (expected ${manifest.sha256}, got ${digest})`)
}

/**
 * Bytes written at once where writes are not direct: 64 KiB, a write(2)
 * small enough not to ask the kernel for large page-cache folios
 * (src/base/file-write.ts; 256 KiB writes cost 3.5 times the system time
 * here).
 */
const WRITE_SLICE = FILE_WRITE_BYTES

/** Direct writes of pieces in flight at most (src/base/direct-write.ts): 16 MiB of 4 MiB pieces. */
const DIRECT_WRITES_IN_FLIGHT = 4

/**
 * A file's content written at its positions into an open local file (a
 * download's temporary file, see StorageAdapter.readInto): pieces fetched
 * several at a time, each verified against its hash and added to the
 * whole file's SHA-256 in order (both on the hashing worker, FileHash),
 * then written. The writes
 * are direct (O_DIRECT, in libuv's pool, from the piece's own buffer) where
 * the system allows it: the file is fsync'd before it is renamed into place
 * anyway, and the page cache's copy costs more than the disk here (see
 * src/base/direct-write.ts); elsewhere slice by slice on this thread.
 * Resolves with the whole file's SHA-256 once it matches the manifest;
 * throws (and the caller drops the file) otherwise.
 */
export async function downloadPiecesInto(
  store: ClusterStore,
  manifest: Manifest,
  sink: FileSink,
  what: string,
  options: {onProgress?: (bytes: number) => void; signal?: AbortSignal} = {},
): Promise<string> {
  const fileHash = await FileHash.open(manifest.size)
  let position = 0
  const direct = DirectWriter.open(sink.fd, manifest.pieceSize, DIRECT_WRITES_IN_FLIGHT)
  try {
    for await (const piece of verifiedPieces(store, manifest, fileHash)) {
      options.signal?.throwIfAborted()
      if (direct) {
        await direct.write(piece, position, (written) => store.recycle?.(written))
      } else {
        for (let offset = 0; offset < piece.length; offset += WRITE_SLICE) {
          writeAllAtSync(sink.fd, piece.subarray(offset, Math.min(piece.length, offset + WRITE_SLICE)), position + offset)
        }

        store.recycle?.(piece)
      }

      position += piece.length
      sink.wrote(piece.length)
      options.onProgress?.(piece.length)
    }

    await direct?.finish()
  } catch (error) {
    fileHash.discard()
    await direct?.abort()
    throw error
  }

  const digest = await fileHash.digest()
  checkWhole(manifest, digest, what)
  return digest
}
