/**
 * A small pipelined RESP client: one TCP connection, any number of commands in
 * flight, replies matched to commands in order. Replies are parsed with
 * `redis-parser` (the parser node-redis and ioredis use). Used by the router
 * to talk to servers, by `cluster status`, and by the cluster files backend.
 */
import net from 'node:net'

import Parser from 'redis-parser'

import {type BufferPool, encodeCommand, type Arg, type Encoded} from './resp.js'

/** A decoded reply: bulk and simple strings as Buffers, integers as numbers, nil as null. */
export type RespValue = null | number | Buffer | RespValue[]

/** The peer answered with an error reply (`-ERR ...`). */
export class RespReplyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'RespReplyError'
  }

  /** The first word of the error, e.g. `NOSERVER` or `CASFAIL`. */
  get code(): string {
    return this.message.split(' ', 1)[0]
  }
}

/** The connection failed, closed, or stopped answering. */
export class RespConnectionError extends Error {
  constructor(message: string, options?: {cause?: unknown}) {
    super(message, options)
    this.name = 'RespConnectionError'
  }
}

export interface RespClientOptions {
  host: string
  port: number
  /** A Unix socket to connect to instead of host and port (host then only names it in messages). */
  path?: string
  /** Give up connecting after this long (default 3000 ms). */
  connectTimeoutMs?: number
  /** Fail the connection when commands are pending and nothing arrives for this long (default 15000 ms). */
  idleTimeoutMs?: number
  /**
   * Bulk replies of at least `pool.minBytes` are read into buffers from this
   * pool instead of fresh ones (a fresh large buffer costs a page fault per
   * 4 KiB). The caller may hand such a reply back with `pool.release()` once
   * nothing uses it any more; one it keeps is simply collected.
   */
  pool?: BufferPool
}

/** The one private field of `redis-parser` the pooled bulk reads rely on. */
interface ParserInternals {
  buffer: Buffer | null
}

let contract: boolean | undefined

/**
 * Whether the installed `redis-parser` keeps the partial reply it holds in
 * its `buffer` field, null exactly when it holds none (true of 3.x). The
 * pooled bulk reads (RespClientOptions.pool) may only start a reply of their
 * own at a reply boundary, which they learn from that field; it is not
 * public API, so it is checked once here, on a real parser, before any
 * client uses it. If an upgrade changes it, this returns false, pooling
 * stays off (every reply goes through the parser, as without a pool), and
 * test/kv/client.test.ts fails loudly.
 */
export function parserBufferContract(): boolean {
  if (contract !== undefined) return contract
  const replies: unknown[] = []
  const parser = new Parser({returnBuffers: true, returnReply: (reply) => replies.push(reply), returnError: () => {}})
  const field = () => (parser as unknown as ParserInternals).buffer
  const idleAtStart = 'buffer' in parser && field() === null
  parser.execute(Buffer.from('$5\r\nab'))
  const heldMidReply = Buffer.isBuffer(field())
  parser.execute(Buffer.from('cde\r\n+OK\r\n'))
  const idleAfter = field() === null
  const parsed = replies.length === 2 && String(replies[0]) === 'abcde' && String(replies[1]) === 'OK'
  contract = idleAtStart && heldMidReply && idleAfter && parsed
  return contract
}

/** A bulk reply's remaining bytes are read straight into its buffer when at least this many are left. */
const DIRECT_READ_MIN_BYTES = 16 * 1024

/** The scratch buffer of a pooled client's socket reads: everything but the large bulk replies' bytes. */
const SCRATCH_BYTES = 256 * 1024

/**
 * The socket's `onread` option for a pooled client: Node reads into the
 * buffer `buffer()` returns (64 KiB chunks otherwise, copied again into the
 * piece's buffer): a 4 MiB piece then arrives in a few large reads, straight
 * into its pooled buffer. Reads before the client exists (none: it is made
 * on connect, before any command) would be dropped.
 */
function directReads(client: () => RespClient | undefined): net.OnReadOpts {
  const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES)
  return {
    buffer: () => client()?.nextReadBuffer(scratch) ?? scratch,
    callback: (n, into) => {
      client()?.received(n, into as Buffer, scratch)
      return true
    },
  }
}

/** The outcome of one command: a failure (RespReplyError or RespConnectionError), or its reply. */
export type RespCallback = (error: Error | null, reply: RespValue) => void

type Pending = RespCallback

export class RespClient {
  readonly host: string
  readonly port: number
  readonly path: string | undefined
  private readonly socket: net.Socket
  private readonly parser: Parser
  private pending: Pending[] = []
  private head = 0
  private lastActivity = Date.now()
  private failure: Error | null = null
  private readonly closeListeners: Array<(error: Error) => void> = []
  private readonly timer: NodeJS.Timeout
  private readonly pool: BufferPool | undefined
  /** Integer replies are read without redis-parser when they start at a reply boundary (which needs the same contract as the pool). */
  private readonly fastIntegers: boolean
  /** A large bulk reply being read into a pooled buffer, past its header. */
  private bulk: {target: Buffer; filled: number; trailer: number} | null = null

  private constructor(socket: net.Socket, options: RespClientOptions) {
    this.host = options.host
    this.port = options.port
    this.path = options.path
    this.socket = socket
    // Pooled reads rely on one private field of redis-parser: without it (another version) they stay off.
    this.pool = options.pool && parserBufferContract() ? options.pool : undefined
    this.fastIntegers = parserBufferContract()
    const idle = options.idleTimeoutMs ?? 15_000
    this.parser = new Parser({
      returnBuffers: true,
      returnReply: (reply) => this.settle(reply as RespValue, null),
      returnError: (error) => this.settle(null, new RespReplyError(error.message)),
      returnFatalError: (error) => this.fail(new RespConnectionError(`bad reply from ${this.address}: ${error.message}`)),
    })
    if (options.path === undefined) socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      this.lastActivity = Date.now()
      this.receive(chunk)
    })
    socket.on('error', (error) => this.fail(new RespConnectionError(`connection to ${this.address} failed: ${error.message}`, {cause: error})))
    socket.on('close', () => this.fail(new RespConnectionError(`connection to ${this.address} closed`)))
    socket.on('drain', () => (this.lastActivity = Date.now()))
    this.timer = setInterval(() => {
      if (this.inFlight > 0 && Date.now() - this.lastActivity > idle) this.fail(new RespConnectionError(`${this.address} did not answer within ${idle} ms`))
    }, Math.min(1000, Math.max(50, idle / 4)))
    this.timer.unref()
  }

  /** Connects; rejects with RespConnectionError. */
  static connect(options: RespClientOptions): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      // A pooled client reads the socket itself (onread): large bulk replies straight into their pooled buffers.
      let client: RespClient | undefined
      const onread = options.pool && parserBufferContract() ? directReads(() => client) : undefined
      const socket = options.path === undefined ? net.connect({host: options.host, port: options.port, onread}) : net.connect({path: options.path, onread})
      const where = options.path === undefined ? `${options.host}:${options.port}` : options.path
      const timeout = setTimeout(() => {
        socket.destroy()
        reject(new RespConnectionError(`cannot connect to ${where}: timed out`))
      }, options.connectTimeoutMs ?? 3000)
      socket.once('error', (error) => {
        clearTimeout(timeout)
        reject(new RespConnectionError(`cannot connect to ${where}: ${error.message}`, {cause: error}))
      })
      socket.once('connect', () => {
        clearTimeout(timeout)
        socket.removeAllListeners('error')
        client = new RespClient(socket, options)
        resolve(client)
      })
    })
  }

  get address(): string {
    return this.path ?? `${this.host}:${this.port}`
  }

  get closed(): boolean {
    return this.failure !== null
  }

  get inFlight(): number {
    return this.pending.length - this.head
  }

  /** Called once when the connection fails or closes. */
  onClose(listener: (error: Error) => void): void {
    if (this.failure) listener(this.failure)
    else this.closeListeners.push(listener)
  }

  /** Sends one command; resolves with its reply, rejects with RespReplyError or RespConnectionError. */
  call(...args: Arg[]): Promise<RespValue> {
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => this.send(encodeCommand(args), (error, reply) => (error ? reject(error) : resolve(reply))))
  }

  /**
   * Sends one command already encoded as RESP (see encodeCommand); `done`
   * gets its reply or failure, once. The cheap form of call() for hot paths:
   * no promise.
   */
  send(command: Encoded, done: RespCallback): void {
    if (this.failure) {
      done(this.failure, null)
      return
    }
    if (this.inFlight === 0) this.lastActivity = Date.now()
    this.pending.push(done)
    if (!this.corked) {
      // Commands issued in the same turn of the event loop (e.g. on behalf
      // of every client whose request arrived in one poll) leave in one
      // write: one syscall instead of one per command.
      this.corked = true
      this.socket.cork()
      setImmediate(this.uncork)
    }
    if (Array.isArray(command)) for (const part of command) this.socket.write(part)
    else this.socket.write(command)
  }

  private corked = false
  private readonly uncork = (): void => {
    this.corked = false
    this.socket.uncork()
  }

  /** Like call(), for a reply expected to be a string (or nil). */
  async callString(...args: Arg[]): Promise<string | null> {
    const reply = await this.call(...args)
    if (reply === null) return null
    return Buffer.isBuffer(reply) ? reply.toString() : String(reply)
  }

  /** Closes the connection; pending commands fail. */
  close(): void {
    this.fail(new RespConnectionError(`connection to ${this.address} closed`))
  }

  /**
   * Where the socket's next read goes (onread mode, see directReads): the
   * rest of the large bulk reply being read, so the kernel copies those
   * bytes straight into its pooled buffer, up to its end and no further;
   * otherwise the connection's scratch buffer.
   */
  nextReadBuffer(scratch: Buffer): Buffer {
    const bulk = this.bulk
    if (bulk && bulk.target.length - bulk.filled >= DIRECT_READ_MIN_BYTES) return bulk.target.subarray(bulk.filled)
    return scratch
  }

  /** Takes `n` bytes the socket read into `into` (onread mode): the current bulk reply's buffer, or the scratch buffer. */
  received(n: number, into: Buffer, scratch: Buffer): void {
    this.lastActivity = Date.now()
    if (into === scratch || into.buffer !== this.bulk?.target.buffer) {
      // The scratch buffer is reused by the next read: whatever the parser keeps must be a copy.
      this.receive(into.subarray(0, n), true)
      return
    }

    this.bulk!.filled += n
  }

  /**
   * Feeds a chunk to the reply parser, except that a large bulk reply which
   * starts at a reply boundary is copied straight into a pooled buffer
   * (`redis-parser` would assemble it in fresh memory).
   */
  private receive(chunk: Buffer, transient = false): void {
    let offset = 0
    while (offset < chunk.length) {
      const bulk = this.bulk
      if (bulk && bulk.filled < bulk.target.length) {
        const n = Math.min(bulk.target.length - bulk.filled, chunk.length - offset)
        chunk.copy(bulk.target, bulk.filled, offset, offset + n)
        bulk.filled += n
        offset += n
      } else if (bulk) {
        // The CRLF after the bulk's bytes.
        if (chunk[offset] !== (bulk.trailer === 0 ? 13 : 10)) {
          this.fail(new RespConnectionError(`bad reply from ${this.address}: a bulk reply does not end in CRLF`))
          return
        }

        offset++
        if (++bulk.trailer === 2) {
          this.bulk = null
          this.settle(bulk.target, null)
        }
      } else if (this.pool && chunk[offset] === 36 && this.parserIdle()) {
        const header = this.bulkHeader(chunk, offset)
        if (header === null) break
        this.bulk = {target: this.pool.take(header.length), filled: 0, trailer: 0}
        offset = header.next
      } else if (chunk[offset] === 43 && this.pool && this.parserIdle()) {
        // A simple string (`+OK`, every XPUT's reply), so that a large bulk reply after it in the chunk is still read into the pool.
        const end = chunk.indexOf(13, offset)
        if (end === -1 || end + 1 >= chunk.length || chunk[end + 1] !== 10) break
        this.settle(Buffer.from(chunk.subarray(offset + 1, end)), null)
        offset = end + 2
      } else if (chunk[offset] === 58 && this.fastIntegers && this.parserIdle()) {
        // An integer reply (every XSET's), read here as redis-parser would read it.
        const next = this.integerReply(chunk, offset)
        if (next < 0) break
        offset = next
      } else break
    }

    if (offset < chunk.length) {
      const rest = offset === 0 ? chunk : chunk.subarray(offset)
      this.parser.execute(transient ? Buffer.from(rest) : rest)
    }
  }

  /** A complete `$N\r\n` header at `offset` with N worth pooling, or null (the parser then takes the reply as usual). */
  private bulkHeader(chunk: Buffer, offset: number): {length: number; next: number} | null {
    const end = chunk.indexOf(13, offset)
    if (end === -1 || end - offset > 16 || end + 1 >= chunk.length || chunk[end + 1] !== 10) return null
    const text = chunk.toString('latin1', offset + 1, end)
    if (!/^\d+$/.test(text)) return null
    const length = Number(text)
    return length >= this.pool!.minBytes ? {length, next: end + 2} : null
  }

  /**
   * Settles a complete `:N\r\n` at `offset` (a ':' byte) with N, as
   * redis-parser does (a number), and returns the offset after it; -1 if
   * the chunk ends before its CRLF (the parser then takes it).
   */
  private integerReply(chunk: Buffer, offset: number): number {
    let at = offset + 1
    let sign = 1
    if (chunk[at] === 45) {
      sign = -1
      at++
    }
    let n = 0
    for (; at < chunk.length; at++) {
      const c = chunk[at]
      if (c === 13) break
      if (c < 48 || c > 57) {
        this.fail(new RespConnectionError(`bad reply from ${this.address}: a bad integer reply`))
        return chunk.length
      }
      n = n * 10 + (c - 48)
    }
    if (at + 1 >= chunk.length) return -1
    if (chunk[at + 1] !== 10) {
      this.fail(new RespConnectionError(`bad reply from ${this.address}: an integer reply does not end in CRLF`))
      return chunk.length
    }
    this.settle(sign * n, null)
    return at + 2
  }

  /** Whether `redis-parser` holds no partial reply (see parserBufferContract). */
  private parserIdle(): boolean {
    return (this.parser as unknown as ParserInternals).buffer === null
  }

  private settle(value: RespValue, error: Error | null): void {
    const entry = this.pending[this.head]
    if (!entry) return
    this.pending[this.head++] = undefined as unknown as Pending
    if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.head)
      this.head = 0
    }
    entry(error, value)
  }

  private fail(error: Error): void {
    if (this.failure) return
    this.failure = error
    clearInterval(this.timer)
    this.socket.destroy()
    const pending = this.pending.slice(this.head)
    this.pending = []
    this.head = 0
    for (const entry of pending) entry(error, null)
    for (const listener of this.closeListeners.splice(0)) listener(error)
  }
}
