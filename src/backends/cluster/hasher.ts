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

/** The worker's whole program: CommonJS, evaluated (no file to find, built or not). */
const WORKER_SOURCE = `
const {parentPort} = require('node:worker_threads')
const {createHash} = require('node:crypto')
parentPort.postMessage({ready: true})
parentPort.on('message', ({id, buffer, offset, length}) => {
  let hash = null
  try {
    hash = createHash('sha256').update(new Uint8Array(buffer, offset, length)).digest('hex')
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
        // Idle between transfers, it must not keep the process alive.
        worker.unref()
        worker.on('message', ({id, hash, ready}: {id: number; hash: string | null; ready?: boolean}) => {
          if (ready) {
            this.booted = true
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
    this.warm()
    return new Promise((resolve) => this.bootWaiters.push(resolve))
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
    const worker = this.worker
    if (!worker) return sha256Hex(data)
    this.onWorker++
    const id = this.nextId++
    const hash = await new Promise<string | null>((resolve) => {
      // Referenced while a digest is awaited, so the process waits for it.
      if (this.pending.size === 0) worker.ref()
      this.pending.set(id, resolve)
      worker.postMessage({id, buffer: data.buffer, offset: data.byteOffset, length: data.length})
    })
    return hash ?? sha256Hex(data)
  }
}

/** One worker for the process, started on the first shared piece. */
export const pieceHasher = new PieceHasher()
