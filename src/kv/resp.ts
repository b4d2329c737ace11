/**
 * RESP glue: a streaming request parser for the server side, and the reply
 * and command encoders.
 *
 * Requests are parsed here rather than with `redis-parser` (which the client
 * side uses for replies) because a request parser must do three things a reply
 * parser cannot: accept inline commands (`PING\r\n` from telnet), refuse a
 * bulk string larger than the value limit while *discarding* its bytes instead
 * of buffering them, and cap what one request may hold so a hostile peer
 * cannot make us buffer without bound.
 */

/** Largest value (and any other bulk argument) the store accepts: 64 MiB. */
export const MAX_VALUE_BYTES = 64 * 1024 * 1024

/** Numbered databases, 0 to 15, as in Redis (SELECT); a command names its database first. */
export const DATABASES = 16

export interface RequestParserOptions {
  /** Bulk arguments above this are refused (the request is answered with an error). */
  maxBulk?: number
  /** Bulk arguments above this are abuse: protocol error, connection closed. */
  hardMaxBulk?: number
  /** Most arguments in one request. */
  maxArgs?: number
  /** Longest inline command line or header line. */
  maxInline?: number
  /** Large bulk arguments are assembled in buffers from this pool, which the dispatcher may hand back once done with them. */
  pool?: BufferPool
}

/**
 * Recycled buffers for large values (file pieces). A fresh large buffer
 * costs a page fault per 4 KiB on first touch (about 4 ms per MiB measured
 * here, ten times the copy itself), so a server that receives piece after
 * piece assembles each in a buffer it used before. Only buffers this pool
 * handed out are taken back.
 */
export class BufferPool {
  private readonly free: Buffer[] = []
  /** Each buffer alloc() made, by its memory: the view release() keeps (alloc may give a view that does not start at byte 0, e.g. aligned memory). */
  private readonly mine = new WeakMap<ArrayBufferLike, Buffer>()
  /** Bytes of alloc()'s buffers out with callers (taken, not yet released nor collected). */
  private lentBytes = 0
  private readonly collected = new FinalizationRegistry<number>((bytes) => {
    this.lentBytes -= bytes
  })

  /**
   * @param minBytes values smaller than this are not pooled
   * @param maxFree buffers kept for reuse at most
   * @param alloc how a new buffer is made (e.g. in a SharedArrayBuffer, for a worker thread to read)
   * @param maxLentBytes past this many bytes of alloc()'s buffers out with callers, take() gives plain
   *   fresh memory instead: a consumer that never hands buffers back then grows nothing the garbage
   *   collector cannot see (it does not count SharedArrayBuffers as memory pressure).
   */
  constructor(
    readonly minBytes = 256 * 1024,
    private readonly maxFree = 16,
    private readonly alloc: (size: number) => Buffer = (size) => Buffer.allocUnsafeSlow(size),
    private readonly maxLentBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** A buffer of exactly `size` bytes (a view of a pooled one when one fits). */
  take(size: number): Buffer {
    for (let i = this.free.length - 1; i >= 0; i--) {
      const candidate = this.free[i]
      if (candidate.length >= size && candidate.length <= size * 2) {
        this.free.splice(i, 1)
        this.lend(candidate.buffer)
        return candidate.subarray(0, size)
      }
    }
    if (this.lentBytes + size > this.maxLentBytes) return Buffer.allocUnsafeSlow(size)
    const fresh = this.alloc(size)
    this.mine.set(fresh.buffer, fresh)
    this.lend(fresh.buffer)
    return fresh
  }

  /** Hands back a buffer from take() (or a view of one) that nothing uses any more; anything else is ignored. */
  release(view: Buffer): void {
    const whole = this.mine.get(view.buffer)
    if (!whole) return
    if (this.collected.unregister(view.buffer)) this.lentBytes -= view.buffer.byteLength
    if (this.free.length >= this.maxFree) return
    if (!this.free.some((held) => held.buffer === whole.buffer)) this.free.push(whole)
  }

  private lend(buffer: ArrayBufferLike): void {
    this.lentBytes += buffer.byteLength
    this.collected.register(buffer, buffer.byteLength, buffer)
  }
}

export interface ParsedRequest {
  args: Buffer[]
  /** Some bulk argument exceeded `maxBulk`; its bytes were discarded. */
  oversize: boolean
}

/** The peer broke the protocol; answer `-ERR Protocol error` and close. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(`Protocol error: ${message}`)
    this.name = 'ProtocolError'
  }
}

const CR = 13
const LF = 10

export class RequestParser {
  private readonly maxBulk: number
  private readonly hardMaxBulk: number
  private readonly maxArgs: number
  private readonly maxInline: number
  private buf: Buffer = Buffer.alloc(0)
  private args: Buffer[] | null = null
  private remaining = 0
  private oversize = false
  private bulkLen = -1
  private bulkChunks: Buffer[] = []
  private bulkHave = 0
  private skip = 0
  private readonly pool: BufferPool | undefined

  constructor(options: RequestParserOptions = {}) {
    this.pool = options.pool
    this.maxBulk = options.maxBulk ?? MAX_VALUE_BYTES
    this.hardMaxBulk = options.hardMaxBulk ?? 512 * 1024 * 1024
    this.maxArgs = options.maxArgs ?? 1024 * 1024
    this.maxInline = options.maxInline ?? 64 * 1024
  }

  /** Feeds bytes from the socket; returns every request completed by them. Throws ProtocolError. */
  feed(chunk: Buffer): ParsedRequest[] {
    const out: ParsedRequest[] = []
    const buf = this.buf.length > 0 ? Buffer.concat([this.buf, chunk]) : chunk
    let pos = 0
    while (pos < buf.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length - pos)
        pos += n
        this.skip -= n
        if (this.skip === 0) this.argDone(Buffer.alloc(0), out)
        continue
      }
      if (this.bulkLen >= 0) {
        pos = this.readBulkBody(buf, pos, out)
        continue
      }
      const next = this.args === null ? this.readRequestStart(buf, pos, out) : this.readBulkHeader(buf, pos)
      if (next < 0) break
      pos = next
    }
    this.buf = pos < buf.length ? Buffer.from(buf.subarray(pos)) : Buffer.alloc(0)
    return out
  }

  private readBulkBody(buf: Buffer, pos: number, out: ParsedRequest[]): number {
    const need = this.bulkLen + 2 - this.bulkHave
    const avail = buf.length - pos
    if (avail < need) {
      this.bulkChunks.push(buf.subarray(pos))
      this.bulkHave += avail
      return buf.length
    }
    this.bulkChunks.push(buf.subarray(pos, pos + need))
    const whole = this.bulkChunks.length === 1 ? this.bulkChunks[0] : this.join(this.bulkChunks, this.bulkLen + 2)
    if (whole[this.bulkLen] !== CR || whole[this.bulkLen + 1] !== LF) throw new ProtocolError('bulk string not terminated by CRLF')
    const arg = whole.subarray(0, this.bulkLen)
    this.bulkLen = -1
    this.bulkChunks = []
    this.bulkHave = 0
    this.argDone(arg, out)
    return pos + need
  }

  private join(chunks: Buffer[], size: number): Buffer {
    if (!this.pool || size < this.pool.minBytes) return Buffer.concat(chunks, size)
    const out = this.pool.take(size)
    let offset = 0
    for (const chunk of chunks) offset += chunk.copy(out, offset)
    return out
  }

  /** Returns the new position, or -1 when the line is not complete yet. */
  private readRequestStart(buf: Buffer, pos: number, out: ParsedRequest[]): number {
    const eol = buf.indexOf(LF, pos)
    if (eol < 0) {
      if (buf.length - pos > this.maxInline) throw new ProtocolError('too big inline request')
      return -1
    }
    if (eol - pos > this.maxInline) throw new ProtocolError('too big inline request')
    if (buf[pos] === 0x2a /* '*' */) {
      const n = parseHeaderNumber(buf, pos + 1, eol)
      if (n === null || n > this.maxArgs) throw new ProtocolError('invalid multibulk length')
      if (n > 0) {
        this.args = []
        this.remaining = n
        this.oversize = false
      }
      return eol + 1
    }
    const line = buf.toString('latin1', pos, eol > pos && buf[eol - 1] === CR ? eol - 1 : eol)
    const words = line.split(/[ \t]+/).filter((word) => word.length > 0)
    if (words.length > 0) out.push({args: words.map((word) => Buffer.from(word, 'latin1')), oversize: false})
    return eol + 1
  }

  private readBulkHeader(buf: Buffer, pos: number): number {
    if (buf[pos] !== 0x24 /* '$' */) throw new ProtocolError(`expected '$', got '${String.fromCharCode(buf[pos])}'`)
    const eol = buf.indexOf(LF, pos)
    if (eol < 0) {
      if (buf.length - pos > 32) throw new ProtocolError('invalid bulk length')
      return -1
    }
    const len = parseHeaderNumber(buf, pos + 1, eol)
    if (len === null || len > this.hardMaxBulk) throw new ProtocolError('invalid bulk length')
    if (len > this.maxBulk) {
      this.oversize = true
      this.skip = len + 2
    } else {
      this.bulkLen = len
    }
    return eol + 1
  }

  private argDone(arg: Buffer, out: ParsedRequest[]): void {
    const args = this.args as Buffer[]
    args.push(arg)
    if (--this.remaining === 0) {
      out.push({args, oversize: this.oversize})
      this.args = null
      this.oversize = false
    }
  }
}

/** Parses the decimal between `start` and the CRLF ending at `eol`; null if malformed. */
function parseHeaderNumber(buf: Buffer, start: number, eol: number): number | null {
  const end = buf[eol - 1] === CR ? eol - 1 : eol
  if (end <= start || end - start > 15) return null
  let n = 0
  for (let i = start; i < end; i++) {
    const c = buf[i]
    if (c === 0x2d && i === start && end - start > 1) {
      // "*-1" / "$-1": a null; treated as empty for arrays, refused for bulks
      return parseHeaderNumber(buf, start + 1, eol) === null ? null : 0
    }
    if (c < 48 || c > 57) return null
    n = n * 10 + (c - 48)
  }
  return n
}

// ---- replies ------------------------------------------------------------

/** An encoded reply: one buffer, or several written in turn (large bulks are not copied). */
export type Encoded = Buffer | Buffer[]

const CRLF = Buffer.from('\r\n')
export const OK = Buffer.from('+OK\r\n')
export const PONG = Buffer.from('+PONG\r\n')
export const NULL_BULK = Buffer.from('$-1\r\n')
export const NULL_ARRAY = Buffer.from('*-1\r\n')
export const ZERO = Buffer.from(':0\r\n')
export const ONE = Buffer.from(':1\r\n')

export function simple(text: string): Buffer {
  return Buffer.from(`+${text.replace(/[\r\n]/g, ' ')}\r\n`)
}

export function error(message: string): Buffer {
  return Buffer.from(`-${message.replace(/[\r\n]/g, ' ')}\r\n`)
}

export function integer(n: number): Buffer {
  if (n === 0) return ZERO
  if (n === 1) return ONE
  return Buffer.from(`:${n}\r\n`)
}

const BULK_COPY_LIMIT = 16 * 1024

export function bulk(value: Buffer | string | null): Encoded {
  if (value === null) return NULL_BULK
  const data = typeof value === 'string' ? Buffer.from(value) : value
  const head = Buffer.from(`$${data.length}\r\n`)
  if (data.length > BULK_COPY_LIMIT) return [head, data, CRLF]
  return Buffer.concat([head, data, CRLF])
}

export function array(items: Encoded[] | null): Encoded {
  if (items === null) return NULL_ARRAY
  const parts: Buffer[] = [Buffer.from(`*${items.length}\r\n`)]
  for (const item of items) {
    if (Array.isArray(item)) parts.push(...item)
    else parts.push(item)
  }
  return coalesce(parts)
}

/** Joins runs of small buffers so a long array is a few writes, leaving large ones uncopied. */
function coalesce(parts: Buffer[]): Encoded {
  const out: Buffer[] = []
  let run: Buffer[] = []
  let runBytes = 0
  for (const part of parts) {
    if (part.length > BULK_COPY_LIMIT) {
      if (run.length > 0) out.push(Buffer.concat(run, runBytes))
      out.push(part)
      run = []
      runBytes = 0
      continue
    }
    run.push(part)
    runBytes += part.length
    if (runBytes >= 64 * 1024) {
      out.push(Buffer.concat(run, runBytes))
      run = []
      runBytes = 0
    }
  }
  if (run.length > 0) out.push(Buffer.concat(run, runBytes))
  return out.length === 1 ? out[0] : out
}

// ---- commands (client side) ---------------------------------------------

export type Arg = Buffer | string | number

/** Encodes a command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly Arg[]): Buffer[] {
  const parts: Buffer[] = []
  let small: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const arg of args) {
    const data = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg))
    const head = Buffer.from(`$${data.length}\r\n`)
    if (data.length > BULK_COPY_LIMIT) {
      small.push(head)
      parts.push(Buffer.concat(small), data)
      small = [CRLF]
    } else {
      small.push(head, data, CRLF)
    }
  }
  parts.push(Buffer.concat(small))
  return parts
}

/** Writes `n` (a non-negative integer) in decimal at `pos`; returns the position after it. */
function writeDecimal(out: Buffer, pos: number, n: number): number {
  if (n < 10) {
    out[pos] = 48 + n
    return pos + 1
  }
  return pos + out.write(String(n), pos, 'latin1')
}

function decimalLength(n: number): number {
  let digits = 1
  while (n >= 10) {
    n = Math.floor(n / 10)
    digits++
  }
  return digits
}

/**
 * The same bytes as encodeCommand, in one buffer when no argument is larger
 * than 16 KiB (one allocation, one write), else as encodeCommand does.
 * Numbers are integers; strings are UTF-8.
 */
export function encodeArgs(args: readonly Arg[]): Encoded {
  let size = 1 + decimalLength(args.length) + 2
  const data: Array<Buffer | string | number> = new Array(args.length)
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    // Versions are 16-digit numbers: written digit by digit, not through a string.
    const item = Buffer.isBuffer(arg) || isDigits(arg) ? arg : String(arg)
    const length = itemLength(item)
    if (length > BULK_COPY_LIMIT) return encodeCommand(args)
    data[i] = item
    size += 1 + decimalLength(length) + 2 + length + 2
  }
  const out = Buffer.allocUnsafe(size)
  out[0] = 0x2a // '*'
  let pos = writeDecimal(out, 1, args.length)
  out[pos++] = CR
  out[pos++] = LF
  for (const item of data) {
    out[pos++] = 0x24 // '$'
    pos = writeDecimal(out, pos, itemLength(item))
    out[pos++] = CR
    out[pos++] = LF
    if (typeof item === 'number') pos = writeDigits(out, pos, item)
    else pos += typeof item === 'string' ? out.write(item, pos, 'utf8') : item.copy(out, pos)
    out[pos++] = CR
    out[pos++] = LF
  }
  return out
}

/** A number that encodeArgs writes digit by digit: a non-negative safe integer. */
function isDigits(arg: Arg): arg is number {
  return typeof arg === 'number' && Number.isSafeInteger(arg) && arg >= 0
}

function itemLength(item: Buffer | string | number): number {
  return typeof item === 'number' ? decimalLength(item) : typeof item === 'string' ? Buffer.byteLength(item) : item.length
}

/** Writes a non-negative safe integer in decimal at `pos`, without a string; returns the position after it. */
function writeDigits(out: Buffer, pos: number, n: number): number {
  const end = pos + decimalLength(n)
  let at = end
  do {
    const next = Math.floor(n / 10)
    out[--at] = 48 + (n - next * 10)
    n = next
  } while (n > 0)
  return end
}
