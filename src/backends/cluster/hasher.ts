/**
 * SHA-256 of pieces on the second core. A transfer hashes every byte twice
 * (each piece's name, and the whole file's SHA-256), which is most of its
 * CPU: one pass on this thread (the whole file, which must go in order) and
 * the other in a worker thread (the pieces, in any order), at the same time.
 *
 * Only pieces whose bytes live in a SharedArrayBuffer go to the worker: it
 * reads them where they are, with no copy (the message carries the buffer's
 * handle, an offset and a length, and the digest comes back). The caller must
 * not change those bytes until the digest has come back. Anything else, and
 * everything when the worker cannot start or has failed, is hashed here.
 */
import {createHash} from 'node:crypto'
import type {Worker} from 'node:worker_threads'

import {alignedBuffer} from '../../base/index.js'
import {BufferPool} from '../../kv/resp.js'

/**
 * A file's hash and its pieces' go together a slice of this size at a time
 * (FileHash): the second pass finds the slice in the CPU's cache. Measured
 * on 1 GiB of 4 MiB pieces not in cache: both hashes in 1.23 s with 64 KiB
 * slices, 1.37 s with 256 KiB, 1.59 s with 1 MiB, 1.80 s in two passes.
 */
const INTERLEAVE_BYTES = 64 * 1024

/** The worker's whole program: CommonJS, evaluated (no file to find, built or not). */
const WORKER_SOURCE = `
const {parentPort} = require('node:worker_threads')
const {createHash} = require('node:crypto')
const CHUNK = ${INTERLEAVE_BYTES}
const files = new Map()
parentPort.postMessage({ready: true})
parentPort.on('message', ({id, buffer, offset, length, bytes, file, expected, open, close}) => {
  if (open !== undefined) return void files.set(open, createHash('sha256'))
  let hash = null
  try {
    if (close !== undefined) {
      hash = files.get(close)?.digest('hex') ?? null
      files.delete(close)
    } else {
      const data = bytes ?? new Uint8Array(buffer, offset, length)
      const whole = file === undefined ? undefined : files.get(file)
      if (whole) {
        // The piece's own hash and the file's, a slice at a time: the second pass reads from the CPU's cache.
        const before = whole.copy()
        const piece = createHash('sha256')
        for (let at = 0; at < data.length; at += CHUNK) {
          const slice = data.subarray(at, at + CHUNK)
          piece.update(slice)
          whole.update(slice)
        }
        hash = piece.digest('hex')
        // A piece that is not what was expected is not part of the file: the whole goes back to before it.
        if (expected && hash !== expected) files.set(file, before)
      } else if (file === undefined) {
        hash = createHash('sha256').update(data).digest('hex')
      }
    }
  } catch {}
  parentPort.postMessage({id, hash})
})
`

/** A buffer the worker can read without a copy. */
export function isShared(buffer: Buffer): boolean {
  return typeof SharedArrayBuffer === 'function' && buffer.buffer instanceof SharedArrayBuffer
}

/**
 * Shared memory a pool lends out at most (BufferPool's maxLentBytes): the
 * garbage collector does not count SharedArrayBuffers as memory pressure, so
 * a consumer that never hands pieces back (cat, serve webdav, the web
 * console) would otherwise grow with the file. Past it, plain memory, hashed
 * on this thread. 24 MiB holds a download's window and what its file writer
 * has queued (measured: a 256 MiB cat peaks at 167 MB with it, 252 MB with
 * 64 MiB, 336 MB without a bound).
 */
export const SHARED_LENT_BYTES = 24 * 1024 * 1024
/** The same for an upload's piece buffers: pieces in flight, each kept until stored (10 of 4 MiB at most). */
export const SHARED_LENT_UPLOAD_BYTES = 48 * 1024 * 1024

/**
 * A buffer of `size` bytes in shared memory (see isShared), aligned for
 * direct I/O (a downloaded piece is written from where it arrived, see
 * src/base/direct-write.ts).
 */
export function allocShared(size: number): Buffer {
  return alignedBuffer(size, (bytes) => Buffer.from(new SharedArrayBuffer(bytes)))
}

export const sha256Hex = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

class PieceHasher {
  private worker: Worker | null = null
  private starting: Promise<Worker | null> | null = null
  private readonly pending = new Map<number, (hash: string | null) => void>()
  private nextId = 0
  private failed = false
  /** The worker has said it runs: until then pieces are hashed on this thread rather than wait for its boot. */
  private booted = false
  private readonly bootWaiters: Array<(booted: boolean) => void> = []
  /** Pieces hashed on the worker so far. */
  onWorker = 0

  private start(): Promise<Worker | null> {
    this.starting ??= import('node:worker_threads').then(
      ({Worker}) => {
        const worker = new Worker(WORKER_SOURCE, {eval: true})
        worker.on('message', ({id, hash, ready}: {id: number; hash: string | null; ready?: boolean}) => {
          if (ready) {
            this.booted = true
            // ready() referenced it while its callers waited.
            if (this.pending.size === 0) worker.unref()
            for (const waiter of this.bootWaiters.splice(0)) waiter(true)
            return
          }
          const done = this.pending.get(id)
          this.pending.delete(id)
          if (this.pending.size === 0) worker.unref()
          done?.(hash)
        })
        const fail = () => {
          this.failed = true
          this.worker = null
          for (const waiter of this.bootWaiters.splice(0)) waiter(false)
          // Whatever was asked is hashed here instead.
          for (const done of this.pending.values()) done(null)
          this.pending.clear()
        }
        worker.on('error', fail)
        worker.on('exit', fail)
        // Idle between transfers, it must not keep the process alive. After
        // the listeners: adding a 'message' listener to an unreferenced
        // worker references it again (Node 20), and a process that had only
        // warmed the hasher never exited.
        worker.unref()
        this.worker = worker
        return worker
      },
      () => {
        this.failed = true
        for (const waiter of this.bootWaiters.splice(0)) waiter(false)
        return null
      },
    )
    return this.starting
  }

  /**
   * Starts the worker now, so that it boots (tens of ms, more on a busy
   * machine) while the caller does other work, not while the first pieces wait.
   */
  warm(): void {
    if (!this.failed && !this.worker) void this.start()
  }

  /** Starts the worker if needed; resolves true once it runs, false if it cannot. */
  async ready(): Promise<boolean> {
    if (this.booted || this.failed) return this.booted && !this.failed
    const booted = new Promise<boolean>((resolve) => this.bootWaiters.push(resolve))
    // Someone waits for the boot: the process stays alive until it ends (warm() alone does not hold it).
    void this.start().then((worker) => {
      if (worker && !this.booted && this.bootWaiters.length > 0) worker.ref()
    })
    return booted
  }

  /**
   * The SHA-256 of `data` in hex, on the worker when `data` is shared and the
   * worker runs. While it boots (about 100 ms after warm() on an idle
   * machine), pieces are hashed here instead of waiting for it: an upload's
   * first pieces went to the store 100-130 ms late.
   */
  async hash(data: Buffer): Promise<string> {
    if (this.failed || !isShared(data)) return sha256Hex(data)
    if (!this.booted) {
      this.warm()
      return sha256Hex(data)
    }
    this.onWorker++
    const hash = await this.request({buffer: data.buffer, offset: data.byteOffset, length: data.length})
    return hash ?? sha256Hex(data)
  }

  /** Whether the worker runs now. */
  get running(): boolean {
    return this.booted && !this.failed && this.worker !== null
  }

  /** Posts a message to the running worker (moving `transfer` to it); resolves with its `hash` (null: it failed or stopped). */
  request(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<string | null> {
    const worker = this.worker
    if (!worker || this.failed) return Promise.resolve(null)
    const id = this.nextId++
    return new Promise<string | null>((resolve) => {
      // Referenced while a digest is awaited, so the process waits for it.
      if (this.pending.size === 0) worker.ref()
      this.pending.set(id, resolve)
      worker.postMessage({id, ...message}, transfer)
    })
  }

  /** Posts a message that has no answer. */
  tell(message: Record<string, unknown>): void {
    if (this.worker && !this.failed) this.worker.postMessage(message)
  }
}

/**
 * A whole file's SHA-256 together with its pieces' own, each piece once
 * (see INTERLEAVE_BYTES), on the worker when it runs, else on this thread.
 * Pieces are added in file order; a piece added with the hash it should
 * have counts for the file only if it has it (a replica's bad copy does not
 * spoil the file's hash; add the good copy next). One pass over each piece
 * instead of two, and none on this thread: a 3-server download of 1 GiB
 * spent 1.0 s of this thread in the whole-file hash, which now costs the
 * worker about a third of that on top of the piece's hash.
 */
export class FileHash {
  private static nextFile = 0
  private local = createHash('sha256')
  private readonly file: number | undefined
  private closed = false

  private constructor(onWorker: boolean) {
    if (onWorker) {
      this.file = FileHash.nextFile++
      pieceHasher.tell({open: this.file})
    }
  }

  /**
   * A new file hash. On the worker when it runs, or when the file is large
   * enough (`size` bytes, if known) to wait for its boot (25 ms here); the
   * state cannot move later, so a small file stays on this thread.
   */
  static async open(size?: number): Promise<FileHash> {
    if (!pieceHasher.running && (size ?? 0) >= WORKER_FILE_FROM) await pieceHasher.ready()
    return new FileHash(pieceHasher.running)
  }

  /** A file hash on this thread, whether the worker runs or not. */
  static here(): FileHash {
    return new FileHash(false)
  }

  /** Where the hashing happens. */
  get onWorker(): boolean {
    return this.file !== undefined
  }

  /**
   * Adds the next piece: resolves with its SHA-256 (hex). With `expected`,
   * a piece whose hash differs is left out of the file's. Call in file order;
   * the bytes must not change until it resolves.
   */
  async add(data: Buffer, expected?: string): Promise<string> {
    if (this.closed) throw new Error('the file hash is already finished')
    if (this.file === undefined) return this.addHere(data, expected)
    let hash: string | null
    if (isShared(data)) {
      hash = await pieceHasher.request({buffer: data.buffer, offset: data.byteOffset, length: data.length, file: this.file, expected})
    } else {
      // Plain memory is copied into shared memory the worker reads, reused
      // piece after piece: a copy moved or cloned to the worker would be its
      // garbage, which its collector lets grow (serve webdav over the
      // cluster: 212-242 MiB of RSS against 178 MiB this way).
      const stage = staging.take(data.length)
      data.copy(stage)
      try {
        hash = isShared(stage)
          ? await pieceHasher.request({buffer: stage.buffer, offset: stage.byteOffset, length: data.length, file: this.file, expected})
          : await pieceHasher.request({bytes: stage, file: this.file, expected}, [stage.buffer as ArrayBuffer])
      } finally {
        staging.release(stage)
      }
    }

    if (hash === null) throw new Error('the hashing worker stopped')
    return hash
  }

  private addHere(data: Buffer, expected?: string): string {
    const before = expected ? this.local.copy() : undefined
    const piece = createHash('sha256')
    for (let at = 0; at < data.length; at += INTERLEAVE_BYTES) {
      const slice = data.subarray(at, at + INTERLEAVE_BYTES)
      piece.update(slice)
      this.local.update(slice)
    }
    const hash = piece.digest('hex')
    if (before && hash !== expected) this.local = before
    return hash
  }

  /** The whole file's SHA-256 (hex) of the pieces that counted; the hash is finished. */
  async digest(): Promise<string> {
    if (this.closed) throw new Error('the file hash is already finished')
    this.closed = true
    if (this.file === undefined) return this.local.digest('hex')
    const hash = await pieceHasher.request({close: this.file})
    if (hash === null) throw new Error('the hashing worker stopped')
    return hash
  }

  /** Gives up (a failed transfer): frees the worker's state. */
  discard(): void {
    if (this.closed) return
    this.closed = true
    if (this.file !== undefined) pieceHasher.tell({close: this.file})
  }
}

/**
 * Shared buffers that pieces in plain memory (past a pool's shared memory)
 * are copied into for the worker: at most 16 MiB out at once; past that,
 * plain copies moved over.
 */
const staging = new BufferPool(0, 4, allocShared, 16 * 1024 * 1024)

/** Files of at least this size wait for the worker to boot (FileHash.open). */
const WORKER_FILE_FROM = 16 * 1024 * 1024

/** One worker for the process, started on the first shared piece. */
export const pieceHasher = new PieceHasher()
