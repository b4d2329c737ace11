import type {ServerResponse} from 'node:http'
import type {Writable} from 'node:stream'

/**
 * Buffers a source hands out that may be reused once consumed. A download
 * marks each piece it yields with the function that takes it back (into the
 * pool it was read into); the one writer that knows when a chunk has been
 * fully consumed (the local backend, once the bytes are in the file) calls
 * recycle(). Transforms in between pass the same Buffer object on, so the
 * mark survives them; any other consumer simply never recycles, and the
 * buffer is collected as usual. The mark is keyed by the Buffer object, and
 * taken off when used, so a buffer goes back at most once.
 */
const owners = new WeakMap<Buffer, (buffer: Buffer) => void>()

/** Says that `buffer` may be handed to `release` once its consumer is done with it. */
export function markRecyclable(buffer: Buffer, release: (buffer: Buffer) => void): void {
  owners.set(buffer, release)
}

/** Hands `buffer` back to whoever marked it; call only when nothing reads it any more. */
export function recycle(buffer: Buffer): void {
  const release = owners.get(buffer)
  if (!release) return
  owners.delete(buffer)
  release(buffer)
}

/**
 * Makes a writer (the local backend's file stream) hand each chunk back with
 * recycle() once its write has completed, i.e. once its bytes are in the
 * file and the writer holds no reference to it. The writer itself is
 * unchanged: only the completion of its `_write`/`_writev` is observed.
 */
export function recycleWhenWritten<T extends Writable>(stream: T): T {
  const write = stream._write
  stream._write = function (this: T, chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void) {
    write.call(this, chunk, encoding, (error?: Error | null) => {
      if (!error && Buffer.isBuffer(chunk)) recycle(chunk)
      callback(error)
    })
  }
  const writev = stream._writev
  if (writev) {
    stream._writev = function (this: T, chunks: Array<{chunk: Buffer; encoding: BufferEncoding}>, callback: (error?: Error | null) => void) {
      writev.call(this, chunks, (error?: Error | null) => {
        if (!error) for (const {chunk} of chunks) if (Buffer.isBuffer(chunk)) recycle(chunk)
        callback(error)
      })
    }
  }
  return stream
}

/**
 * The same for an HTTP response (serve webdav's GET): each chunk written goes
 * back once the socket has written it (the write's callback: the bytes are
 * with the kernel, nothing holds the buffer). Without it a server hands
 * every piece of a download to the garbage collector, which does not count
 * shared memory as pressure: RSS grew with each GET. A chunk whose write
 * fails is not handed back (the socket may still hold it); it is collected.
 */
export function recycleWhenSent(res: ServerResponse): ServerResponse {
  const write = res.write
  res.write = function (this: ServerResponse, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    const done = typeof encoding === 'function' ? encoding : callback
    const enc = typeof encoding === 'function' ? undefined : encoding
    if (!Buffer.isBuffer(chunk)) return Reflect.apply(write, this, [chunk, enc, done]) as boolean
    return write.call(this, chunk, enc as BufferEncoding, (error?: Error | null) => {
      if (!error) recycle(chunk)
      if (typeof done === 'function') (done as (error?: Error | null) => void)(error)
    })
  } as ServerResponse['write']
  return res
}
