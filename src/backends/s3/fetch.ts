import {createHash} from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'

import {alignedBuffer, DIRECT_ALIGN, openDirect} from '../../base/index.js'
import type {FileSink} from '../adapter.js'
import {IntegrityError, TemporaryError} from '../errors.js'
import type {Digests} from '../hashing.js'
import {mapS3Error} from './errors.js'
import {objectTarget, type ObjectTarget, type S3Access, signRequest} from './sigv4.js'

/** Bytes per ranged GET: small enough that the in-order hash follows closely, large enough that requests are few. */
export const FETCH_RANGE = 16 * 1024 * 1024
/** Ranged GETs in flight (rclone's --multi-thread-streams default) for an object read unverified. */
const STREAMS = 4
/**
 * An object with a SHA-256 to check is read by one stream, in order, in
 * ranges of this size after the first: every byte is then hashed from
 * memory as it is written, none read back, and no hashing is left once the
 * last byte is in. Measured on the 256 MiB bench object under load: 20–25%
 * faster than 4 streams, whose ranges ahead were read back and hashed in a
 * tail after the transfer, and less CPU (docs/s3-webdav.md).
 */
const VERIFIED_RANGE = 64 * 1024 * 1024
/** Socket reads land in segments of this size, written to the file at their position once full. */
const SEGMENT = 1024 * 1024
/** Segments per stream: one filling, the rest being written. */
const SEGMENTS = 4
/** A stream asks for its next range once this much of the current one is still to come, so the next reply's first byte does not wait behind the last. */
const NEXT_AHEAD = 4 * 1024 * 1024
/** A connection that says nothing for this long has failed. */
const IDLE_MS = 30_000
/**
 * A reply cut off after some of its body came (the connection closed or
 * reset mid-body) is asked again for the rest, from the last whole segment,
 * this many times per range: rclone's low-level retries. Ceph's radosgw was
 * seen closing a 64 MiB ranged reply 40–60 MB in, now and then, behind a
 * proxy.
 */
const RESUMES = 3
/** Error bodies kept (the XML with the S3 error code). */
const ERROR_BODY_MAX = 64 * 1024

interface Head {
  status: number
  headers: Map<string, string>
}

/** What the SDK's errors look like, so mapS3Error reads ours the same way. */
class S3ResponseError extends Error {
  constructor(
    readonly name: string,
    message: string,
    readonly $metadata: {httpStatusCode: number},
  ) {
    super(message)
  }
}

/** An error reply: the S3 code and message from its XML body, else the status. */
function responseError(head: Head, body: Buffer): S3ResponseError {
  const text = body.toString('utf8')
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? (head.status === 404 ? 'NotFound' : `Http${head.status}`)
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? `HTTP ${head.status}`
  return new S3ResponseError(code, message, {httpStatusCode: head.status})
}

function parseHead(text: string): Head {
  const lines = text.split('\r\n')
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0])
  if (!status) throw new TemporaryError(`not an HTTP reply: ${JSON.stringify(lines[0].slice(0, 80))}`)
  const headers = new Map<string, string>()
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':')
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }

  return {status: Number(status[1]), headers}
}

/** A range of the object (its end is corrected to the object's when the object is smaller). */
interface Range {
  start: number
  end: number
}

/**
 * One ranged GET on its own connection, its body read straight into a few
 * reused segments (net's `onread`: no buffer allocated per read, which is
 * most of what Node's HTTP client costs at these rates) and written to the
 * file at its position. Resolves with the reply's head once it has come,
 * and `done` once every byte of the range is in the file. A reply cut off
 * mid-body is resumed (RESUMES) from the start of its segment being filled,
 * on a new connection, with the same signed headers.
 */
function fetchRange(
  target: ObjectTarget,
  headers: Record<string, string>,
  range: Range,
  sink: FileSink,
  onWritten: (bytes: number) => void,
  shared: Shared,
  idleMs: number,
  onSegment: (data: Buffer, position: number, release: () => void) => boolean,
): {head: Promise<Head>; nearEnd: Promise<void>; done: Promise<void>} {
  const what = `bytes ${range.start}-${range.end}`
  // Aligned: full segments are written with direct I/O where the system allows it (see Shared.direct).
  const free = Array.from({length: SEGMENTS}, () => alignedBuffer(SEGMENT))
  let current = free.pop()!
  let fill = 0
  let position = range.start
  let remaining = -1 // body bytes still to come; -1 while the head is read
  let headBytes: Buffer[] = []
  let errorHead: Head | undefined
  let errorBody: Buffer[] = []
  let errorRemaining = Number.POSITIVE_INFINITY
  let writing = 0
  let paused = false
  let failed: Error | undefined
  let resolveHead!: (head: Head) => void
  let rejectHead!: (error: Error) => void
  let resolveDone!: () => void
  // Never rejects: a failure shows in `done`, which callers race it with.
  let resolveNearEnd!: () => void
  const nearEnd = new Promise<void>((resolve) => (resolveNearEnd = resolve))
  let rejectDone!: (error: Error) => void
  const head = new Promise<Head>((resolve, reject) => {
    resolveHead = resolve
    rejectHead = reject
  })
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve
    rejectDone = reject
  })
  head.catch(() => {})
  done.catch(() => {})

  let socket: net.Socket
  /** Where the open connection's reply starts (range.start, or where a resumed one picks up). */
  let from = range.start
  /** Body bytes the open connection has delivered. */
  let delivered = 0
  let resumes = RESUMES
  let resumed = false
  /** A resumed connection waiting for a free segment. */
  let reopen: (() => void) | null = null

  const fail = (error: Error): void => {
    if (failed) return
    failed = error
    socket.destroy()
    rejectHead(error)
    rejectDone(error)
  }

  const finishIfDone = (): void => {
    if (!failed && remaining === 0 && writing === 0) {
      socket.destroy()
      resolveDone()
    }
  }

  /** Writes the filled part of the current segment at its position and takes a free one. */
  const flush = (): void => {
    const segment = current
    const length = fill
    const at = position
    // The segment is reused once written, and once hashed when the hash keeps it for later (see OrderedHash).
    let holds = 2
    const release = (): void => {
      if (--holds > 0) return
      free.push(segment)
      if (paused && !failed) {
        // `current` is free and is the socket's buffer already.
        paused = false
        const waiting = reopen
        reopen = null
        if (!waiting) socket.resume()
        else if (shared.aborted) fail(new TemporaryError(`${what}: aborted`))
        else waiting()
      }
    }

    if (!onSegment(segment.subarray(0, length), at, release)) holds--
    writing++
    shared.writing++
    position += length
    fill = 0
    const written = (error: Error | null): void => {
      writing--
      shared.writing--
      if (shared.writing === 0) shared.onIdle?.()
      if (error) {
        fail(Object.assign(error, {inFile: true}))
        return
      }

      onWritten(length)
      release()
      finishIfDone()
    }
    const write = (fd: number): void => {
      fs.write(fd, segment, 0, length, at, (error) => {
        if (error && fd !== sink.fd && (error as NodeJS.ErrnoException).code === 'EINVAL') {
          // Direct I/O refused after all: this write and the rest through the ordinary descriptor.
          shared.directRefused = true
          write(sink.fd)
          return
        }

        written(error)
      })
    }

    const direct = shared.direct !== null && !shared.directRefused && length % DIRECT_ALIGN === 0 && at % DIRECT_ALIGN === 0
    write(direct ? shared.direct! : sink.fd)
    // Reading stops while no segment is free (see onBody), so there is one.
    current = free.pop()!
  }

  const onBody = (bytes: number): boolean => {
    fill += bytes
    delivered += bytes
    remaining -= bytes
    if (remaining <= NEXT_AHEAD) resolveNearEnd()
    if (remaining < 0) {
      fail(new TemporaryError(`the reply to ${what} is longer than asked`))
      return false
    }

    if (fill === SEGMENT || remaining === 0) flush()
    if (remaining === 0) {
      finishIfDone()
      return false
    }

    // The last free segment is the next read's: stop reading until a write completes.
    if (free.length === 0) {
      paused = true
      return false
    }

    return true
  }

  const onErrorBody = (bytes: Buffer): boolean => {
    if (errorBody.reduce((n, b) => n + b.length, 0) < ERROR_BODY_MAX) errorBody.push(bytes)
    errorRemaining -= bytes.length
    if (errorRemaining <= 0) fail(responseError(errorHead!, Buffer.concat(errorBody)))
    return !failed
  }

  const onHead = (head: Head): void => {
    const length = Number(head.headers.get('content-length'))
    if (head.status !== 206 && head.status !== 200) {
      errorHead = head
      if (Number.isSafeInteger(length)) errorRemaining = length
      return
    }

    // 206 for the range asked (its end may be the object's, when smaller); 200 is the whole object, for a first range only.
    const span = /^bytes (\d+)-(\d+)\/\d+$/.exec(head.headers.get('content-range') ?? '')
    if (head.status === 206 ? !span || Number(span[1]) !== from || Number(span[2]) > range.end || (resumed && Number(span[2]) !== range.end) : from !== 0) {
      fail(new TemporaryError(`the reply to ${what} is ${head.status} ${head.headers.get('content-range') ?? ''}`))
      return
    }

    range.end = head.status === 206 ? Number(span![2]) : length - 1
    if (length !== range.end - from + 1) {
      fail(new TemporaryError(`the reply to ${what} has ${length} bytes`))
      return
    }

    remaining = length
    if (remaining <= NEXT_AHEAD) resolveNearEnd()
    resolveHead(head)
  }

  const open = (): void => {
    socket = net.connect({
      host: target.hostname,
      port: target.port,
      onread: {
        buffer: () => (remaining < 0 || errorHead ? current : current.subarray(fill)),
        callback: (bytes: number, buffer: Uint8Array): boolean => {
          if (failed) return false
          if (errorHead) return onErrorBody(Buffer.from(buffer.subarray(0, bytes)))

          if (remaining >= 0) return onBody(bytes)
          // The head: kept aside until its blank line; what follows it is the body's start.
          headBytes.push(Buffer.from(buffer.subarray(0, bytes)))
          const all = Buffer.concat(headBytes)
          const end = all.indexOf('\r\n\r\n')
          if (end < 0) {
            headBytes = [all]
            if (all.length > 64 * 1024) fail(new TemporaryError('the reply head is too long'))
            return !failed
          }

          try {
            onHead(parseHead(all.subarray(0, end).toString('latin1')))
          } catch (error) {
            fail(error as Error)
            return false
          }

          headBytes = []
          const rest = all.subarray(end + 4)
          if (errorHead) return rest.length === 0 && errorRemaining > 0 ? true : onErrorBody(Buffer.from(rest))
          if (failed) return false
          if (rest.length === 0) return true
          rest.copy(current, 0)
          return onBody(rest.length)
        },
      },
    })
    const mine = socket
    shared.sockets.add(mine)
    mine.setNoDelay(true)
    let lastError: Error | undefined
    // A listener of its own, not setTimeout's: that one is called once, and the timer is armed again below.
    mine.setTimeout(idleMs)
    mine.on('timeout', () => {
      // Not reading because every segment is still being written (or kept for the hash): our own wait, not the server's.
      if (paused && mine === socket && !failed) {
        mine.setTimeout(idleMs)
        return
      }

      lastError = new TemporaryError(`${what}: no data for ${idleMs / 1000} s`)
      // A reply stalled mid-body is resumed as a cut-off one is (see the close below); anything else fails.
      if (remaining > 0 && delivered > 0 && resumes > 0 && !shared.aborted) mine.destroy()
      else fail(lastError)
    })
    // A failure shows at the close that follows; a cut-off reply may be resumed there.
    mine.on('error', (error) => (lastError = error))
    mine.on('close', () => {
      shared.sockets.delete(mine)
      if (failed || mine !== socket) return
      if (errorHead) return fail(responseError(errorHead, Buffer.concat(errorBody)))
      if (remaining === 0) return
      if (remaining > 0 && delivered > 0 && resumes > 0 && !shared.aborted) {
        // The bytes of the segment being filled are asked for again; every earlier one is written or being written.
        resumes--
        resumed = true
        from = position
        fill = 0
        delivered = 0
        remaining = -1
        headBytes = []
        // While every other segment is being written, the new connection waits for one (see onBody).
        if (paused) reopen = open
        else open()
        return
      }
      fail(lastError && remaining < 0 ? lastError : new TemporaryError(`the connection closed before the end of ${what}`, {backendCode: 'ECONNRESET'}))
    })
    const request = {...headers, range: `bytes=${from}-${range.end}`}
    mine.write(`GET ${target.path} HTTP/1.1\r\n${Object.entries(request).map(([name, value]) => `${name}: ${value}\r\n`).join('')}connection: close\r\n\r\n`)
  }

  open()
  return {head, nearEnd, done}
}

/** What the ranges of one object share: their connections and the writes in flight. */
interface Shared {
  sockets: Set<net.Socket>
  /** Set when the fetch is over or failed: a closed connection is then not resumed. */
  aborted?: boolean
  /**
   * A second descriptor on the file for direct writes (src/base/direct-write.ts),
   * or null. Whole aligned segments go through it: the file is fsync'd before
   * it is renamed into place anyway, and copying it into the page cache first
   * cost more than the disk here (a third of the rounds ran at half speed
   * without it; docs/s3-webdav.md).
   */
  direct: number | null
  /** The filesystem refused a direct write (EINVAL): the ordinary descriptor from then on. */
  directRefused?: boolean
  writing: number
  onIdle?: () => void
}

/**
 * Hashes the object from its start in one pass, in order, from memory: a
 * segment that comes next in order is hashed as it is written; a segment
 * of a later range that came ahead is kept (not reused by its range) until
 * everything before it is hashed. A range that runs ahead therefore stops
 * reading once its SEGMENTS are all kept, so memory stays bounded and no
 * byte is read back from the file (which direct writes would make a read
 * from the disk).
 */
class OrderedHash {
  private readonly hash = createHash('sha256')
  private hashed = 0
  private readonly ahead = new Map<number, {data: Buffer; release: () => void}>()
  private stopped = false

  /** A segment about to be written at `position`: true when it is kept, to be released once hashed. */
  offer(data: Buffer, position: number, release: () => void): boolean {
    if (this.stopped) return false
    if (position !== this.hashed) {
      this.ahead.set(position, {data, release})
      return true
    }

    this.hash.update(data)
    this.hashed += data.length
    for (let next = this.ahead.get(this.hashed); next; next = this.ahead.get(this.hashed)) {
      this.ahead.delete(this.hashed)
      this.hash.update(next.data)
      this.hashed += next.data.length
      next.release()
    }

    return false
  }

  /** No hash is wanted (or the fetch is over): what is kept goes back, and nothing more is hashed. */
  stop(): void {
    this.stopped = true
    const kept = [...this.ahead.values()]
    this.ahead.clear()
    for (const {release} of kept) release()
  }

  digest(size: number): string {
    if (this.hashed !== size) throw new Error(`hashed ${this.hashed} of ${size} bytes`)
    return this.hash.digest('hex')
  }
}

export interface FetchOptions {
  signal?: AbortSignal
  onProgress?: (bytes: number) => void
  /** `cannot read /b/k` for errors. */
  what: string
  /** How long a connection may send nothing (while we read) before it is resumed or fails; default IDLE_MS. */
  idleMs?: number
}

/**
 * Reads a whole object into `sink` (an open file, read-write) as ranged
 * GETs, STREAMS at a time, each written at its position; every range after
 * the first is pinned to the first reply's ETag (If-Match), so a replaced
 * object fails the read instead of mixing two versions. When the object
 * carries its SHA-256 (`x-amz-meta-sha256`) one stream reads it in order
 * (VERIFIED_RANGE), the file is hashed as it fills (OrderedHash) and a
 * mismatch is an IntegrityError. Memory: 2 × STREAMS × SEGMENTS segments of 1 MiB (two ranges per stream at its turn).
 */
export async function fetchObject(access: S3Access, bucket: string, key: string, sink: FileSink, options: FetchOptions): Promise<Digests> {
  const target = objectTarget(access, bucket, key)
  if (target.secure) throw new Error('fetchObject speaks plain http only')
  const shared: Shared = {sockets: new Set(), writing: 0, direct: openDirect(sink.fd)}
  const abort = (): void => {
    shared.aborted = true
    for (const socket of shared.sockets) socket.destroy(new TemporaryError(`${options.what}: aborted`))
  }

  // Hashes from the first byte on: whether the object carries a hash is known only once the first head has come.
  const hasher = new OrderedHash()
  options.signal?.addEventListener('abort', abort, {once: true})
  try {
    const onWritten = (bytes: number): void => options.onProgress?.(bytes)
    const get = (range: Range, extra: Record<string, string>) =>
      fetchRange(target, signRequest(access, 'GET', target, extra), range, sink, onWritten, shared, options.idleMs ?? IDLE_MS, (data, position, release) =>
        hasher.offer(data, position, release),
      )

    // The first range's head says the size, the ETag and the hash; the others start once it has come.
    const firstRange = {start: 0, end: FETCH_RANGE - 1}
    const first = get(firstRange, {})
    let head: Head
    try {
      head = await first.head
    } catch (error) {
      // A range past the end of a smaller object, or any other refusal: the caller's size was stale.
      throw mapS3Error(error, options.what)
    }

    const size = head.status === 206 ? Number(/\/(\d+)$/.exec(head.headers.get('content-range') ?? '')?.[1]) : firstRange.end + 1
    if (!Number.isSafeInteger(size)) throw new TemporaryError(`${options.what}: no object size in the reply`)
    const etag = head.headers.get('etag')
    const sha256 = head.headers.get('x-amz-meta-sha256')
    const verify = sha256 !== undefined && /^[0-9a-f]{64}$/.test(sha256)
    if (!verify) hasher.stop()
    const streams = verify ? 1 : STREAMS
    const rangeSize = verify ? VERIFIED_RANGE : FETCH_RANGE
    let next = firstRange.end + 1
    let stopped = false
    // Each stream's ranges in turn, the next asked for while the last NEXT_AHEAD bytes of the current one come.
    const pending: Array<Promise<void>> = []
    const stream = async (): Promise<void> => {
      while (next < size && !stopped) {
        const start = next
        next = Math.min(size, start + rangeSize)
        const range = get({start, end: next - 1}, etag ? {'if-match': etag} : {})
        pending.push(range.done.catch(failFast))
        await Promise.race([range.nearEnd, range.done])
      }
    }

    // The first failure stops the others at once (they then fail as aborted: the first is the one to report).
    let firstError: unknown
    const failFast = (error: unknown): void => {
      firstError ??= error
      stopped = true
      abort()
    }

    await Promise.all([Promise.race([first.nearEnd, first.done]).then(stream), ...Array.from({length: streams - 1}, stream)].map((p) => p.catch(failFast)))
    await Promise.all([first.done.catch(failFast), ...pending])
    if (firstError !== undefined) throw (firstError as {inFile?: boolean}).inFile ? firstError : mapS3Error(firstError, options.what)

    if (!verify) return {}
    const got = hasher.digest(size)
    if (got !== sha256) throw new IntegrityError(`${options.what}: sha256 mismatch (expected ${sha256}, got ${got})`)
    return {sha256: got}
  } finally {
    options.signal?.removeEventListener('abort', abort)
    abort()
    // The caller closes the file next: no write or read of ours may still be queued on its descriptor.
    if (shared.writing > 0) await new Promise<void>((resolve) => (shared.onIdle = resolve))
    if (shared.direct !== null) fs.closeSync(shared.direct)
    hasher.stop()
  }
}
