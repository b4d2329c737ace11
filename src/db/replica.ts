/**
 * A replica (`disk-client db replica --main H:P`): follows any Redis-protocol
 * master, ours or a real redis-server, and serves reads.
 *
 * The link: PING, `REPLCONF listening-port`, `REPLCONF capa eof capa psync2`
 * and `PSYNC <replid> <offset + 1>` (`PSYNC ? -1` the first time), pipelined.
 * `+FULLRESYNC <replid> <offset>` is followed by the RDB, as `$<length>` then
 * the file (disk) or `$EOF:<40-byte mark>`, the file and the mark again
 * (diskless); newlines before it are the master's keep-alives. `+CONTINUE`
 * goes on with the stream. The stream is RESP arrays of write commands, each
 * counted in the offset; `SELECT` switches the stream's database; `REPLCONF
 * GETACK` is answered with `REPLCONF ACK <offset>`, which is also sent every
 * second. A broken link is retried every half second with a partial resync.
 */
import net from 'node:net'

import {serveConnection, type Session} from '../kv/connection.js'
import {OK, ProtocolError, RequestParser, bulk, encodeCommand, error, type Encoded} from '../kv/resp.js'
import {CommandStats, WRITE_COMMANDS, configCommand, keyspaceSection, parseInteger, serverSection, sharedCommand} from './commands.js'
import {Dataset} from './dataset.js'
import {DATABASES, RdbReader} from './rdb.js'
import {listenTcp} from '../net/listen.js'

export interface DbReplicaOptions {
  host?: string
  port?: number
  dataDir: string
  main: {host: string; port: number}
  /** How often REPLCONF ACK is sent (default 1000 ms). */
  ackPeriodMs?: number
  /** Wait before reconnecting a broken link (default 500 ms). */
  retryMs?: number
  log?: (line: string) => void
}

const READONLY = error("READONLY You can't write against a read only replica.")

type LinkPhase = 'connecting' | 'handshake' | 'psync' | 'bulk-header' | 'rdb' | 'mark' | 'stream'

/** Bytes a command takes in the stream as a RESP array of bulk strings. */
function encodedLength(args: Buffer[]): number {
  let n = 1 + String(args.length).length + 2
  for (const arg of args) n += 1 + String(arg.length).length + 2 + arg.length + 2
  return n
}

export class DbReplica {
  readonly data: Dataset
  private readonly options: DbReplicaOptions
  private readonly tcp = net.createServer((socket) => this.accept(socket))
  private readonly sockets = new Set<net.Socket>()
  private bound: {host: string; port: number} | null = null
  private readonly started = Date.now()
  private readonly commandStats = new CommandStats()
  private stopped = false
  private timers: NodeJS.Timeout[] = []

  // the link to the main
  private link: net.Socket | null = null
  private phase: LinkPhase = 'connecting'
  private buf: Buffer = Buffer.alloc(0)
  private handshakeReplies = 0
  private replid = '?'
  /** Stream bytes processed (Redis's slave_repl_offset). */
  private offset = -1
  private streamDb = 0
  private rdb: RdbReader | null = null
  private rdbRemaining = -1
  private eofMark: Buffer | null = null
  private loader: ReturnType<Dataset['replaceAll']> | null = null
  private parser = new RequestParser()
  private lastIo = 0
  private readonly counters = {fullSyncs: 0, partialSyncs: 0, skippedKeys: 0, ignoredCommands: 0}

  constructor(options: DbReplicaOptions) {
    this.options = options
    this.data = new Dataset(options.dataDir)
  }

  get address(): {host: string; port: number} {
    if (!this.bound) throw new Error('server is not started')
    return this.bound
  }

  async start(): Promise<void> {
    await this.data.open()
    const host = this.options.host ?? '127.0.0.1'
    this.bound = await listenTcp(this.tcp, this.options.port ?? 0, host)
    const ack = setInterval(() => this.sendAck(), this.options.ackPeriodMs ?? 1000)
    ack.unref()
    this.timers.push(ack)
    this.connect()
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const timer of this.timers) clearInterval(timer)
    this.link?.destroy()
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()))
    await this.data.close()
  }

  // ---- the link to the main ----------------------------------------------

  private connect(): void {
    if (this.stopped) return
    const {host, port} = this.options.main
    const socket = net.connect({host, port})
    this.link = socket
    this.phase = 'connecting'
    this.buf = Buffer.alloc(0)
    socket.setNoDelay(true)
    socket.on('connect', () => {
      this.phase = 'handshake'
      this.handshakeReplies = 0
      // One at a time: redis-server refuses a PSYNC that arrives while replies are still owed.
      socket.write(Buffer.concat(this.handshake()[0]))
    })
    socket.on('data', (chunk: Buffer) => {
      this.lastIo = Date.now()
      try {
        this.receive(chunk)
      } catch (failure) {
        this.options.log?.(`link to the main ${host}:${port}: ${(failure as Error).message}; reconnecting`)
        socket.destroy()
      }
    })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      if (this.link !== socket) return
      if (this.phase === 'stream') this.options.log?.(`lost the link to the main ${host}:${port} at offset ${this.offset}`)
      if (this.phase === 'bulk-header' || this.phase === 'rdb' || this.phase === 'mark') {
        // The snapshot did not arrive whole: the replid and offset of its
        // +FULLRESYNC do not describe our data, so the next sync is a full one.
        this.options.log?.(`lost the link to the main ${host}:${port} during a full resync`)
        this.replid = '?'
        this.offset = -1
      }
      this.link = null
      this.phase = 'connecting'
      this.rdb = null
      this.loader = null
      if (this.stopped) return
      const retry = setTimeout(() => this.connect(), this.options.retryMs ?? 500)
      retry.unref()
    })
  }

  /** PING, REPLCONF listening-port, REPLCONF capa, PSYNC: each sent after the previous one's reply. */
  private handshake(): Buffer[][] {
    const psync = this.replid === '?' ? ['PSYNC', '?', '-1'] : ['PSYNC', this.replid, this.offset + 1]
    return [encodeCommand(['PING']), encodeCommand(['REPLCONF', 'listening-port', this.address.port]), encodeCommand(['REPLCONF', 'capa', 'eof', 'capa', 'psync2']), encodeCommand(psync)]
  }

  private sendAck(): void {
    if (this.link && this.phase === 'stream') this.link.write(Buffer.concat(encodeCommand(['REPLCONF', 'ACK', this.offset])))
  }

  /** One line (without CRLF) from the buffer, or null if it is not complete. */
  private line(): string | null {
    const eol = this.buf.indexOf(10)
    if (eol < 0) {
      if (this.buf.length > 64 * 1024) throw new Error('line too long from the main')
      return null
    }
    const text = this.buf.toString('latin1', 0, eol > 0 && this.buf[eol - 1] === 13 ? eol - 1 : eol)
    this.buf = this.buf.subarray(eol + 1)
    return text
  }

  private receive(chunk: Buffer): void {
    if (this.phase === 'stream') {
      this.stream(chunk)
      return
    }
    if (this.phase === 'rdb') {
      this.rdbBytes(chunk)
      return
    }
    this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, chunk]) : chunk
    while (this.phase === 'handshake') {
      const line = this.line()
      if (line === null) return
      if (this.handshakeReplies === 0 && line.startsWith('-') && !line.startsWith('-ERR')) throw new Error(`the main refused PING: ${line}`)
      const next = this.handshake()[++this.handshakeReplies]
      this.link!.write(Buffer.concat(next))
      if (this.handshakeReplies === 3) this.phase = 'psync'
    }
    if (this.phase === 'psync') {
      const line = this.line()
      if (line === null) return
      const full = /^\+FULLRESYNC (\S+) (\d+)$/.exec(line)
      const partial = /^\+CONTINUE(?: (\S+))?$/.exec(line)
      if (full) {
        this.replid = full[1]
        this.offset = Number(full[2])
        this.phase = 'bulk-header'
      } else if (partial) {
        if (partial[1]) this.replid = partial[1]
        this.counters.partialSyncs++
        this.options.log?.(`partial resync with the main from offset ${this.offset + 1}`)
        this.phase = 'stream'
        this.parser = new RequestParser()
        const rest = this.buf
        this.buf = Buffer.alloc(0)
        if (rest.length > 0) this.stream(rest)
        return
      } else throw new Error(`the main answered PSYNC with '${line}'`)
    }
    if (this.phase === 'bulk-header') {
      for (;;) {
        const line = this.line()
        if (line === null) return
        if (line === '') continue // keep-alive newline while the main prepares its snapshot
        const eof = /^\$EOF:(.{40})$/.exec(line)
        const len = /^\$(\d+)$/.exec(line)
        if (!eof && !len) throw new Error(`expected the RDB payload, got '${line.slice(0, 60)}'`)
        this.eofMark = eof ? Buffer.from(eof[1], 'latin1') : null
        this.rdbRemaining = len ? Number(len[1]) : -1
        this.rdb = new RdbReader()
        this.loader = this.data.replaceAll()
        this.counters.fullSyncs++
        this.options.log?.(`full resync from the main: ${eof ? 'diskless' : `${len![1]} bytes`}, replid ${this.replid}, offset ${this.offset}`)
        this.phase = 'rdb'
        const rest = this.buf
        this.buf = Buffer.alloc(0)
        if (rest.length > 0) this.rdbBytes(rest)
        return
      }
    }
    if (this.phase === 'mark') this.checkMark()
  }

  private rdbBytes(chunk: Buffer): void {
    const rdb = this.rdb!
    let part = chunk
    let after: Buffer = Buffer.alloc(0)
    if (this.rdbRemaining >= 0) {
      part = chunk.subarray(0, this.rdbRemaining)
      after = chunk.subarray(part.length)
      this.rdbRemaining -= part.length
    }
    const {entries, rest} = rdb.feed(part)
    for (const {db, key, value} of entries) this.loader!.load(db, key, value)
    if (!rdb.done) {
      if (this.rdbRemaining === 0) throw new Error('the RDB payload ended before its EOF opcode')
      return
    }
    // The snapshot is in: swap it in, and go on with the stream.
    this.counters.skippedKeys += rdb.skipped
    const loaded = this.loader!
    this.loader = null
    this.rdb = null
    void loaded.finish().catch((failure: Error) => this.options.log?.(`could not store the snapshot: ${failure.message}`))
    if (rdb.skipped > 0) this.options.log?.(`skipped ${rdb.skipped} keys of types other than string`)
    this.streamDb = 0
    this.parser = new RequestParser()
    if (this.eofMark) {
      this.buf = rest
      this.phase = 'mark'
      this.checkMark()
      return
    }
    if (rest.length > 0 || this.rdbRemaining > 0) throw new Error('the RDB payload is longer than its file')
    this.startStream(after)
  }

  private checkMark(): void {
    if (this.buf.length < 40) return
    if (!this.buf.subarray(0, 40).equals(this.eofMark!)) throw new Error('the diskless RDB payload does not end with its mark')
    const rest = this.buf.subarray(40)
    this.buf = Buffer.alloc(0)
    this.startStream(rest)
  }

  private startStream(rest: Buffer): void {
    this.phase = 'stream'
    this.sendAck()
    if (rest.length > 0) this.stream(rest)
  }

  private stream(chunk: Buffer): void {
    let requests
    try {
      requests = this.parser.feed(chunk)
    } catch (failure) {
      throw new Error(failure instanceof ProtocolError ? failure.message : String(failure))
    }
    for (const {args} of requests) {
      this.apply(args)
      this.offset += encodedLength(args)
    }
  }

  /** Applies one command from the main's stream. */
  private apply(args: Buffer[]): void {
    const name = args[0].toString('latin1').toUpperCase()
    const db = this.streamDb
    const persist = (write: Promise<unknown>): void => {
      write.catch((failure: Error) => this.options.log?.(`could not store a replicated write: ${failure.message}`))
    }
    switch (name) {
      case 'PING':
      case 'MULTI':
      case 'EXEC':
        return
      case 'SELECT': {
        const n = parseInteger(args[1] ?? Buffer.alloc(0))
        if (n !== null && n >= 0 && n < DATABASES) this.streamDb = n
        return
      }
      case 'REPLCONF':
        if (args[1]?.toString('latin1').toUpperCase() === 'GETACK') this.sendAck()
        return
      case 'SET': {
        const options = args.slice(3).map((arg) => arg.toString('latin1').toUpperCase())
        const exists = this.data.has(db, args[1])
        if ((options.includes('NX') && exists) || (options.includes('XX') && !exists)) return
        persist(this.data.set(db, args[1], args[2]))
        return
      }
      case 'SETNX':
        if (!this.data.has(db, args[1])) persist(this.data.set(db, args[1], args[2]))
        return
      case 'GETSET':
        persist(this.data.set(db, args[1], args[2]))
        return
      case 'SETEX':
      case 'PSETEX':
        persist(this.data.set(db, args[1], args[3]))
        return
      case 'MSET':
        for (let i = 1; i + 1 < args.length; i += 2) persist(this.data.set(db, args[i], args[i + 1]))
        return
      case 'DEL':
      case 'UNLINK':
        for (const key of args.slice(1)) persist(this.data.delete(db, key))
        return
      case 'INCR':
      case 'DECR':
      case 'INCRBY':
      case 'DECRBY': {
        const by = name.endsWith('BY') ? parseInteger(args[2]) : 1
        const old = this.data.get(db, args[1])
        const current = old === undefined ? 0 : parseInteger(old)
        if (by === null || current === null) break
        persist(this.data.set(db, args[1], Buffer.from(String(current + (name.startsWith('DECR') ? -by : by)))))
        return
      }
      case 'APPEND': {
        const old = this.data.get(db, args[1])
        persist(this.data.set(db, args[1], old ? Buffer.concat([old, args[2]]) : args[2]))
        return
      }
      case 'FLUSHDB':
      case 'FLUSHALL':
        for (let n = 0; n < DATABASES; n++) {
          if (name === 'FLUSHDB' && n !== db) continue
          for (const key of [...this.data.keys(n)]) persist(this.data.delete(n, key))
        }
        return
      default:
        break
    }
    this.counters.ignoredCommands++
    if (this.counters.ignoredCommands <= 10) this.options.log?.(`ignored a replicated ${name} (only string commands are applied)`)
  }

  // ---- clients -------------------------------------------------------------

  private accept(socket: net.Socket): void {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    serveConnection(socket, (args, session) => this.dispatch(args, session))
  }

  replicationInfo(): string {
    const up = this.phase === 'stream'
    return (
      [
        '# Replication',
        'role:slave',
        `master_host:${this.options.main.host}`,
        `master_port:${this.options.main.port}`,
        `master_link_status:${up ? 'up' : 'down'}`,
        `master_last_io_seconds_ago:${this.lastIo ? Math.floor((Date.now() - this.lastIo) / 1000) : -1}`,
        `master_sync_in_progress:${this.phase === 'rdb' || this.phase === 'mark' || this.phase === 'bulk-header' ? 1 : 0}`,
        `slave_read_repl_offset:${Math.max(this.offset, 0)}`,
        `slave_repl_offset:${Math.max(this.offset, 0)}`,
        'slave_priority:100',
        'slave_read_only:1',
        'replica_announced:1',
        'connected_slaves:0',
        'master_failover_state:no-failover',
        `master_replid:${this.replid === '?' ? '0'.repeat(40) : this.replid}`,
        'master_replid2:0000000000000000000000000000000000000000',
        `master_repl_offset:${Math.max(this.offset, 0)}`,
        'second_repl_offset:-1',
        `full_syncs:${this.counters.fullSyncs}`,
        `partial_syncs:${this.counters.partialSyncs}`,
        `rdb_skipped_keys:${this.counters.skippedKeys}`,
        `ignored_stream_commands:${this.counters.ignoredCommands}`,
      ].join('\r\n') + '\r\n'
    )
  }

  private dispatch(args: Buffer[], session: Session): Encoded {
    const name = args[0].toString('latin1').toUpperCase()
    this.commandStats.count(name)
    if (WRITE_COMMANDS.has(name)) return READONLY
    const shared = sharedCommand(name, args, session, this.data)
    if (shared !== undefined) return shared
    switch (name) {
      case 'INFO': {
        const wanted = new Set(args.slice(1).map((arg) => arg.toString('latin1').toLowerCase()))
        const all = wanted.size === 0 || wanted.has('all') || wanted.has('everything') || wanted.has('default')
        const sections: string[] = []
        if (all || wanted.has('server')) sections.push(serverSection('replica', this.bound?.port ?? 0, this.started))
        if (all || wanted.has('replication')) sections.push(this.replicationInfo())
        if (wanted.has('commandstats') || wanted.has('all') || wanted.has('everything')) sections.push(this.commandStats.section())
        if (all || wanted.has('keyspace')) sections.push(keyspaceSection(this.data))
        return bulk(sections.join('\r\n'))
      }
      case 'CONFIG':
        return configCommand(args, this.commandStats)
      case 'WAIT':
        return error('ERR WAIT cannot be used with replica instances.')
      default:
        return error(`ERR unknown command '${name.toLowerCase()}'`)
    }
  }
}


