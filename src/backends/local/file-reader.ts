import type {FileHandle} from 'node:fs/promises'
import {Readable} from 'node:stream'

import {dropFromPageCache} from '../../base/index.js'
import {BufferPool} from '../../kv/resp.js'
import {markRecyclable} from '../recycle.js'

/** Files of this size and above are read in LARGE_READ_BYTES chunks. */
export const LARGE_READ_FROM = 64 * 1024 * 1024
/**
 * 4 MiB reads: the size of the cluster's pieces of such files
 * (src/backends/cluster/manifest.ts), so each chunk goes on as one piece,
 * with no copy.
 */
export const LARGE_READ_BYTES = 4 * 1024 * 1024
const READ_BYTES = 1024 * 1024

/**
 * Chunks in shared memory (a worker thread can hash them where they are,
 * see src/backends/cluster/hasher.ts), reused once a consumer hands them back
 * (recycle.ts); a consumer that never does gets fresh ones, as from any
 * read stream.
 */
/** Shared memory lent out at most (see BufferPool's maxLentBytes); past it, plain memory. */
const SHARED_LENT_BYTES = 64 * 1024 * 1024
const pool = new BufferPool(0, 12, (size) => Buffer.from(new SharedArrayBuffer(size)), SHARED_LENT_BYTES)

/**
 * A whole file as a stream of full chunks (only the last may be shorter):
 * 1 MiB, or 4 MiB for files of 64 MiB and more, or `chunkBytes` when the
 * caller asks (ReadOptions.chunkBytes). With `dropBehind`, each chunk's bytes
 * are dropped from the page cache once read (ReadOptions.dropBehind). Closes
 * the handle when it ends or is destroyed.
 */
export class FileChunks extends Readable {
  private readonly chunkBytes: number
  /** The file offset of the next read (reads follow each other from 0). */
  private position = 0

  constructor(
    private readonly handle: FileHandle,
    size: number,
    chunkBytes?: number,
    private readonly dropBehind = false,
  ) {
    chunkBytes = chunkBytes && chunkBytes > 0 ? chunkBytes : size >= LARGE_READ_FROM ? LARGE_READ_BYTES : READ_BYTES
    super({highWaterMark: chunkBytes})
    this.chunkBytes = chunkBytes
  }

  override _read(): void {
    const buffer = pool.take(this.chunkBytes)
    this.fill(buffer, 0)
  }

  /** Reads until the buffer is full or the file ends (a regular file's read returns less only at its end; a pipe's, whenever it is empty). */
  private fill(buffer: Buffer, filled: number): void {
    // Through the FileHandle, so that its close waits for a read in flight; at
    // the file's own offset (reads follow each other), so that pipes work too.
    this.handle.read(buffer, filled, buffer.length - filled, null).then(
      ({bytesRead}) => {
        filled += bytesRead
        if (bytesRead > 0 && filled < buffer.length) return this.fill(buffer, filled)
        if (filled === 0) {
          pool.release(buffer)
          this.push(null)
          return
        }

        // A pipe refuses the advice; a regular file's read bytes go.
        if (this.dropBehind && !this.destroyed) dropFromPageCache(this.handle.fd, this.position, filled)
        this.position += filled
        const chunk = filled === buffer.length ? buffer : buffer.subarray(0, filled)
        markRecyclable(chunk, (done) => pool.release(done))
        this.push(chunk)
      },
      (error: unknown) => {
        pool.release(buffer)
        this.destroy(error as Error)
      },
    )
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(error),
      (closeError: unknown) => callback(error ?? (closeError as Error)),
    )
  }
}
