/**
 * Sending a region of a file to a TCP socket from a thread of libuv's pool,
 * as Apache's workers serve files: the thread reads into a 256 KiB buffer and
 * sends it, waiting in poll(2) while the socket is full (native.c). The event
 * loop neither sees the bytes nor runs a stream for them. Not sendfile(2):
 * on loopback it made the receiver read every byte cold from memory and was
 * slower than Node's streams; a small buffer that stays in the CPU's cache
 * was faster than Apache (docs/s3-webdav.md).
 *
 * A source that can be sent this way says so: the local backend marks the
 * read streams it opens with the file region they would read
 * (markFileRegion). A server that finds a region on the stream it was given
 * (fileRegionOf), on a plain TCP socket (canSendFile), sends the region
 * instead of reading the stream, then destroys the stream (which closes the
 * file). Anything else (no addon, TLS, another backend, too many sends at
 * once) reads the stream as before.
 */
import type {Socket} from 'node:net'
import os from 'node:os'
import type {Readable} from 'node:stream'

import {nativeAddon} from './native.js'

/** Bytes of an open file: `length` from `offset`. */
export interface FileRegion {
  fd: number
  offset: number
  length: number
}

const regions = new WeakMap<Readable, FileRegion>()

/** Says that reading `stream` to its end gives exactly the bytes of `region` (whose descriptor the stream owns). */
export function markFileRegion<T extends Readable>(stream: T, region: FileRegion): T {
  regions.set(stream, region)
  return stream
}

/** The region a stream was marked with, if it has not started reading. */
export function fileRegionOf(stream: Readable): FileRegion | undefined {
  const region = regions.get(stream)
  return region && stream.readableLength === 0 && !stream.readableDidRead && !stream.destroyed ? region : undefined
}

/**
 * Each send holds one thread of libuv's pool for as long as its client
 * takes; past this many at once, the others stream, so that file reads and
 * LevelDB always find threads: a third of the pool, at most 4 (bin/run.js
 * makes the pool 12 unless UV_THREADPOOL_SIZE says otherwise; libuv's
 * default is 4, which allows 1).
 */
export const MAX_SENDS = Math.max(1, Math.min(4, Math.floor((Number(process.env.UV_THREADPOOL_SIZE) || 4) / 3)))
let sending = 0

/** The descriptor of a plain TCP socket; none for TLS (its bytes must be encrypted by Node) or a socket without one. */
function descriptorOf(socket: Socket | null | undefined): number | undefined {
  if (!socket || (socket as {encrypted?: boolean}).encrypted || socket.destroyed) return undefined
  const fd = (socket as unknown as {_handle?: {fd?: unknown}})._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

/** How many sends are in progress (each holds a pool thread). */
export function sendsInProgress(): number {
  return sending
}

/** Whether sendFile() can be used on this socket now. */
export function canSendFile(socket: Socket | null | undefined): boolean {
  return sending < MAX_SENDS && descriptorOf(socket) !== undefined && typeof nativeAddon()?.sendFile === 'function'
}

const EMPTY = Buffer.alloc(0)

const errnoNames = new Map(Object.entries(os.constants.errno).map(([name, errno]) => [errno, name]))

function errnoError(errno: number, sent: number, region: FileRegion): NodeJS.ErrnoException {
  const code = errnoNames.get(errno) ?? `E${errno}`
  const progress = `${sent} of ${region.length} bytes sent`
  const what =
    code === 'ENODATA' ? `the file ended early (${progress})` : code === 'ETIMEDOUT' ? `the client took nothing for too long (${progress})` : `cannot send the file: ${code} (${progress})`
  const error: NodeJS.ErrnoException = new Error(what)
  error.code = code
  error.errno = errno
  return error
}

/**
 * Sends `region` to `socket` (check canSendFile first), after everything
 * already written to the socket has gone out; resolves once every byte is
 * with the kernel. Nothing else may write to the socket until it settles. It
 * rejects when the client goes away (EPIPE, ECONNRESET), the socket is
 * destroyed meanwhile (ECANCELED), the client takes nothing for `idleMs`
 * (ETIMEDOUT), or the file is shorter than the region (ENODATA); the
 * connection is then unusable and should be destroyed.
 */
export async function sendFile(socket: Socket, region: FileRegion, idleMs = 30_000): Promise<void> {
  const native = nativeAddon()
  const send = native?.sendFile?.bind(native)
  if (!native || !send) throw new Error('sendFile: the native addon is not loaded')
  sending++
  try {
    // The headers (or whatever was written before) must be with the kernel
    // first: writes complete in order, so an empty one's callback says so.
    if (socket.writableLength > 0 || socket.writableNeedDrain) {
      await new Promise<void>((resolve, reject) => {
        socket.write(EMPTY, (error) => (error ? reject(error) : resolve()))
      })
    }

    const fd = descriptorOf(socket)
    if (fd === undefined) {
      const error: NodeJS.ErrnoException = new Error('the socket closed before the file could be sent')
      error.code = 'ECANCELED'
      throw error
    }

    if (region.length === 0) return
    await new Promise<void>((resolve, reject) => {
      let control: unknown
      const abort = () => native.abortSend(control)
      control = send(fd, region.fd, region.offset, region.length, idleMs, (errno: number, sent: number) => {
        socket.off('close', abort)
        if (errno === 0) resolve()
        else reject(errnoError(errno, sent, region))
      })
      socket.once('close', abort)
    })
  } finally {
    sending--
  }
}
