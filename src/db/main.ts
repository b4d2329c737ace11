/**
 * The main database (`disk-client db main`): a RESP server over the dataset
 * (memory + LevelDB) and a Redis replication master.
 *
 * Every write is applied to memory at once, its effect appended to the
 * replication stream in the same tick (so a snapshot taken at any moment is
 * exactly the data at the stream's offset), and answered once LevelDB has it.
 * The stream goes to every online replica and into the backlog; a replica
 * that asks `PSYNC <replid> <offset>` inside the backlog gets `+CONTINUE` and
 * the missing bytes, any other gets `+FULLRESYNC <replid> <offset>` and an
 * RDB snapshot (`$<length>` then the file), then the stream. Legacy `SYNC`
 * gets the snapshot without the `+FULLRESYNC` line.
 *
 * With `sync: 'manual'` writes are applied and answered on the main but their
 * effects wait (as `SET`/`DEL`/`MSET`, so replaying one over a snapshot that
 * already has it changes nothing) until SYNCREPLICAS appends them to the
 * stream. A replica that attaches meanwhile gets a snapshot of the current
 * data: attaching is a sync for that replica.
 */
import {randomBytes} from 'node:crypto'
import net from 'node:net'

import {serveConnection, type Session} from '../kv/connection.js'
import {NULL_BULK, OK, array, bulk, encodeCommand, error, integer, type Arg, type Encoded} from '../kv/resp.js'
import {Backlog} from './backlog.js'
import {CommandStats, NOT_INTEGER, WRONG_ARGS, configCommand, keyspaceSection, parseInteger, serverSection, sharedCommand} from './commands.js'
import {Dataset} from './dataset.js'
import {rdbSize, writeRdb} from './rdb.js'
import {listenTcp} from '../net/listen.js'

export type SyncMode = 'auto' | 'manual'

export interface DbMainOptions {
  host?: string
  /** TCP port (0 picks a free one). */
  port?: number
  dataDir: string
  /** 'auto' (default): writes reach replicas at once; 'manual': on SYNCREPLICAS. */
  sync?: SyncMode
  /** Replication backlog size in bytes (default 1 MiB, as Redis). */
  backlogBytes?: number
  /** How often a PING goes down the stream to replicas (default 10 s, Redis's repl-ping-replica-period). */
  pingPeriodMs?: number
  log?: (line: string) => void
}

type LinkState = 'wait_bgsave' | 'send_bulk' | 'online'

interface ReplicaLink {
  socket: net.Socket
  ip: string
  listeningPort: number
  state: LinkState
  ackOffset: number
  lastAckAt: number
  /** Stream bytes produced while the snapshot is being sent. */
  buffered: Buffer[] | null
  bufferedBytes: number
}

/** Stream bytes a replica may have unsent before its link is closed (Redis's replica hard limit). */
const REPLICA_OUTPUT_LIMIT = 256 * 1024 * 1024

interface Waiter {
  target: number
  need: number
  resolve: (reply: Encoded) => void
  timer: NodeJS.Timeout | null
}

const NO_REPLY = Buffer.alloc(0)
const GETACK = Buffer.concat(encodeCommand(['REPLCONF', 'GETACK', '*']))
const PING = Buffer.concat(encodeCommand(['PING']))

function command(args: readonly Arg[]): Buffer {
  return Buffer.concat(encodeCommand(args))
}

export class DbMain {
  readonly data: Dataset
  readonly replid = randomBytes(20).toString('hex')
  readonly syncMode: SyncMode
  private readonly backlog: Backlog
  private readonly options: DbMainOptions
  private readonly tcp = net.createServer((socket) => this.accept(socket))
  private readonly sockets = new Set<net.Socket>()
  private readonly links = new Map<net.Socket, ReplicaLink>()
  private readonly handshakes = new WeakMap<net.Socket, ReplicaLink>()
  private pending: Array<{db: number; bytes: Buffer}> = []
  private pendingBytes = 0
  private streamDb = -1
  private waiters: Waiter[] = []
  private readonly stats = {syncFull: 0, syncPartialOk: 0, syncPartialErr: 0, commands: 0, connections: 0}
  private readonly commandStats = new CommandStats()
  private timer: NodeJS.Timeout | null = null
  private bound: {host: string; port: number} | null = null
  private readonly started = Date.now()

  constructor(options: DbMainOptions) {
    this.options = options
    this.syncMode = options.sync ?? 'auto'
    this.backlog = new Backlog(options.backlogBytes ?? 1024 * 1024)
    this.data = new Dataset(options.dataDir)
  }

  get address(): {host: string; port: number} {
    if (!this.bound) throw new Error('server is not started')
    return this.bound
  }

  /** The replication offset: stream bytes produced so far. */
  get offset(): number {
    return this.backlog.offset
  }

  async start(): Promise<void> {
    await this.data.open()
    const host = this.options.host ?? '127.0.0.1'
    this.bound = await listenTcp(this.tcp, this.options.port ?? 0, host)
    let lastPing = Date.now()
    const period = this.options.pingPeriodMs ?? 10_000
    this.timer = setInterval(() => {
      if (Date.now() - lastPing >= period && this.links.size > 0) {
        lastPing = Date.now()
        this.append(PING)
      }
    }, Math.min(1000, period))
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    for (const waiter of this.waiters) if (waiter.timer) clearTimeout(waiter.timer)
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()))
    await this.data.close()
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket)
    this.stats.connections++
    socket.on('close', () => {
      this.sockets.delete(socket)
      if (this.links.delete(socket)) this.options.log?.(`replica ${socket.remoteAddress}:${socket.remotePort} disconnected`)
    })
    serveConnection(socket, (args, session) => this.dispatch(socket, args, session))
  }

  // ---- the replication stream ------------------------------------------

  /** Appends bytes to the stream: the backlog, online replicas, and replicas still receiving a snapshot. */
  private append(bytes: Buffer): void {
    this.backlog.append(bytes)
    for (const link of this.links.values()) {
      if (link.state === 'online') {
        // The writes of one tick leave in one syscall per replica.
        if (!this.corked.has(link.socket)) {
          link.socket.cork()
          this.corked.add(link.socket)
          if (this.corked.size === 1) process.nextTick(this.uncork)
        }
        link.socket.write(bytes)
        if (link.socket.writableLength > REPLICA_OUTPUT_LIMIT) this.dropSlowReplica(link)
      } else if (link.buffered) {
        link.buffered.push(bytes)
        link.bufferedBytes += bytes.length
        if (link.bufferedBytes > REPLICA_OUTPUT_LIMIT) this.dropSlowReplica(link)
      }
    }
  }

  /** Like Redis's client-output-buffer-limit for replicas: one that cannot keep up is cut off (it will resync). */
  private dropSlowReplica(link: ReplicaLink): void {
    this.options.log?.(`replica ${link.ip}:${link.listeningPort} is more than ${REPLICA_OUTPUT_LIMIT} bytes behind; closing its link`)
    this.links.delete(link.socket)
    link.buffered = null
    link.socket.destroy()
  }

  private readonly corked = new Set<net.Socket>()
  private readonly uncork = (): void => {
    for (const socket of this.corked) socket.uncork()
    this.corked.clear()
  }

  private feed(db: number, bytes: Buffer): void {
    if (db !== this.streamDb) {
      this.append(command(['SELECT', db]))
      this.streamDb = db
    }
    this.append(bytes)
  }

  /** Sends a write's effect to replicas now (auto) or at the next SYNCREPLICAS (manual). */
  private propagate(db: number, args: readonly Arg[]): void {
    const bytes = command(args)
    if (this.syncMode === 'manual') {
      this.pending.push({db, bytes})
      this.pendingBytes += bytes.length
    } else this.feed(db, bytes)
  }

  /** SYNCREPLICAS: the held writes go down the stream. Returns their bytes. */
  syncReplicas(): number {
    const bytes = this.pendingBytes
    for (const {db, bytes: command} of this.pending) this.feed(db, command)
    this.pending = []
    this.pendingBytes = 0
    if (bytes > 0) this.options.log?.(`synced ${bytes} bytes of writes to the replicas`)
    return bytes
  }

  /** The replica state of a connection: it becomes a replica (in `links`) when it asks for the stream. */
  private link(socket: net.Socket): ReplicaLink {
    let link = this.links.get(socket) ?? this.handshakes.get(socket)
    if (!link) {
      link = {socket, ip: socket.remoteAddress?.replace(/^::ffff:/, '') ?? '?', listeningPort: socket.remotePort ?? 0, state: 'wait_bgsave', ackOffset: 0, lastAckAt: Date.now(), buffered: null, bufferedBytes: 0}
      this.handshakes.set(socket, link)
    }
    return link
  }

  private psync(socket: net.Socket, args: Buffer[]): Encoded {
    if (args.length !== 3) return WRONG_ARGS('psync')
    const link = this.link(socket)
    const replid = args[1].toString('latin1')
    const from = parseInteger(args[2])
    if (replid === this.replid && from !== null) {
      const missing = this.backlog.since(from)
      if (missing) {
        this.stats.syncPartialOk++
        link.state = 'online'
        link.buffered = null
        this.links.set(socket, link)
        socket.write(`+CONTINUE ${this.replid}\r\n`)
        if (missing.length > 0) socket.write(missing)
        this.options.log?.(`replica ${link.ip}:${link.listeningPort}: partial resync from offset ${from} (${missing.length} bytes)`)
        return NO_REPLY
      }
    }
    if (replid !== '?') this.stats.syncPartialErr++
    void this.fullSync(link, `+FULLRESYNC ${this.replid} ${this.backlog.offset}\r\n`)
    return NO_REPLY
  }

  /** Sends a snapshot and then the stream produced meanwhile. */
  private async fullSync(link: ReplicaLink, preamble: string): Promise<void> {
    const {socket} = link
    this.stats.syncFull++
    const snapshot = this.data.snapshot()
    // The next write names its database: the replica starts the stream in db 0.
    this.streamDb = -1
    link.state = 'send_bulk'
    link.buffered = []
    link.bufferedBytes = 0
    this.links.set(socket, link)
    const size = rdbSize(snapshot)
    this.options.log?.(`replica ${link.ip}:${link.listeningPort}: full resync at offset ${this.backlog.offset}, ${size} bytes of RDB`)
    socket.write(`${preamble}$${size}\r\n`)
    for (const chunk of writeRdb(snapshot)) {
      if (socket.destroyed) return
      if (!socket.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            socket.off('drain', done)
            socket.off('close', done)
            resolve()
          }
          socket.on('drain', done)
          socket.on('close', done)
        })
      }
    }
    if (socket.destroyed) return
    if (!link.buffered) return // dropped meanwhile
    for (const bytes of link.buffered) socket.write(bytes)
    link.buffered = null
    link.state = 'online'
  }

  private replconf(socket: net.Socket, args: Buffer[]): Encoded {
    if (args.length < 2) return WRONG_ARGS('replconf')
    const sub = args[1].toString('latin1').toLowerCase()
    if (sub === 'ack') {
      const link = this.links.get(socket)
      const offset = args.length >= 3 ? parseInteger(args[2]) : null
      if (link && offset !== null) {
        link.ackOffset = Math.max(link.ackOffset, offset)
        link.lastAckAt = Date.now()
        this.checkWaiters()
      }
      return NO_REPLY
    }
    if (sub === 'getack') return NO_REPLY
    if (sub === 'listening-port') {
      const port = args.length >= 3 ? parseInteger(args[2]) : null
      if (port === null) return NOT_INTEGER
      this.link(socket).listeningPort = port
      return OK
    }
    return OK
  }

  private acked(target: number): number {
    let n = 0
    for (const link of this.links.values()) if (link.state === 'online' && link.ackOffset >= target) n++
    return n
  }

  private checkWaiters(): void {
    this.waiters = this.waiters.filter((waiter) => {
      const n = this.acked(waiter.target)
      if (n < waiter.need) return true
      if (waiter.timer) clearTimeout(waiter.timer)
      waiter.resolve(integer(n))
      return false
    })
  }

  private wait(args: Buffer[]): Encoded | Promise<Encoded> {
    if (args.length !== 3) return WRONG_ARGS('wait')
    const need = parseInteger(args[1])
    const timeout = parseInteger(args[2])
    if (need === null || timeout === null || timeout < 0) return NOT_INTEGER
    const target = this.backlog.offset
    const now = this.acked(target)
    if (now >= need || this.links.size === 0) return integer(now)
    this.append(GETACK)
    return new Promise((resolve) => {
      const waiter: Waiter = {target, need, resolve, timer: null}
      if (timeout > 0) {
        waiter.timer = setTimeout(() => {
          this.waiters = this.waiters.filter((other) => other !== waiter)
          resolve(integer(this.acked(target)))
        }, timeout)
      }
      this.waiters.push(waiter)
    })
  }

  // ---- INFO --------------------------------------------------------------

  replicationInfo(): string {
    const links = [...this.links.values()]
    const lines = ['# Replication', 'role:master', `connected_slaves:${links.length}`]
    links.forEach((link, i) => {
      const lag = Math.floor((Date.now() - link.lastAckAt) / 1000)
      lines.push(`slave${i}:ip=${link.ip},port=${link.listeningPort},state=${link.state},offset=${link.ackOffset},lag=${lag}`)
    })
    lines.push(
      'master_failover_state:no-failover',
      `master_replid:${this.replid}`,
      'master_replid2:0000000000000000000000000000000000000000',
      `master_repl_offset:${this.backlog.offset}`,
      'second_repl_offset:-1',
      'repl_backlog_active:1',
      `repl_backlog_size:${this.backlog.size}`,
      `repl_backlog_first_byte_offset:${this.backlog.firstByteOffset}`,
      `repl_backlog_histlen:${this.backlog.historyBytes}`,
      `sync_mode:${this.syncMode}`,
      `pending_sync_bytes:${this.pendingBytes}`,
    )
    return lines.join('\r\n') + '\r\n'
  }

  private info(args: Buffer[]): Encoded {
    const wanted = new Set(args.slice(1).map((arg) => arg.toString('latin1').toLowerCase()))
    const all = wanted.size === 0 || wanted.has('all') || wanted.has('everything') || wanted.has('default')
    const sections: string[] = []
    if (all || wanted.has('server')) sections.push(serverSection('main', this.bound?.port ?? 0, this.started))
    if (all || wanted.has('clients')) sections.push(`# Clients\r\nconnected_clients:${this.sockets.size}\r\n`)
    if (all || wanted.has('stats')) {
      sections.push(
        [
          '# Stats',
          `total_connections_received:${this.stats.connections}`,
          `total_commands_processed:${this.stats.commands}`,
          `sync_full:${this.stats.syncFull}`,
          `sync_partial_ok:${this.stats.syncPartialOk}`,
          `sync_partial_err:${this.stats.syncPartialErr}`,
        ].join('\r\n') + '\r\n',
      )
    }
    if (all || wanted.has('replication')) sections.push(this.replicationInfo())
    if (wanted.has('commandstats') || wanted.has('all') || wanted.has('everything')) sections.push(this.commandStats.section())
    if (all || wanted.has('keyspace')) sections.push(keyspaceSection(this.data))
    return bulk(sections.join('\r\n'))
  }

  // ---- commands ----------------------------------------------------------

  private dispatch(socket: net.Socket, args: Buffer[], session: Session): Encoded | Promise<Encoded> {
    const name = args[0].toString('latin1').toUpperCase()
    this.stats.commands++
    this.commandStats.count(name)
    if (name === 'CLIENT' && args.length === 4 && args[1].toString('latin1').toUpperCase() === 'KILL' && args[2].toString('latin1').toUpperCase() === 'TYPE') {
      // CLIENT KILL TYPE replica|slave: drops the replicas' links (they come back with PSYNC).
      const type = args[3].toString('latin1').toLowerCase()
      if (type !== 'replica' && type !== 'slave') return integer(0)
      const sockets = [...this.links.keys()]
      for (const replica of sockets) replica.destroy()
      return integer(sockets.length)
    }
    const shared = sharedCommand(name, args, session, this.data)
    if (shared !== undefined) return shared
    const db = session.db
    switch (name) {
      case 'SET':
        return this.set(db, args)
      case 'SETNX':
        if (args.length !== 3) return WRONG_ARGS(name)
        return this.set(db, [args[0], args[1], args[2], Buffer.from('NX')], true)
      case 'GETSET': {
        if (args.length !== 3) return WRONG_ARGS(name)
        const old = this.data.get(db, args[1]) ?? null
        return this.write(db, ['SET', args[1], args[2]], this.data.set(db, args[1], args[2]), bulk(old))
      }
      case 'MSET': {
        if (args.length < 3 || args.length % 2 === 0) return WRONG_ARGS(name)
        const writes: Array<Promise<unknown>> = []
        for (let i = 1; i < args.length; i += 2) writes.push(this.data.set(db, args[i], args[i + 1]))
        return this.write(db, ['MSET', ...args.slice(1)], Promise.all(writes), OK)
      }
      case 'DEL':
      case 'UNLINK': {
        if (args.length < 2) return WRONG_ARGS(name)
        const present = args.slice(1).filter((key) => this.data.has(db, key))
        if (present.length === 0) return integer(0)
        return this.write(db, ['DEL', ...present], Promise.all(present.map((key) => this.data.delete(db, key))), integer(present.length))
      }
      case 'INCR':
      case 'DECR':
        if (args.length !== 2) return WRONG_ARGS(name)
        return this.incr(db, args[1], name === 'INCR' ? 1 : -1, args)
      case 'INCRBY':
      case 'DECRBY': {
        if (args.length !== 3) return WRONG_ARGS(name)
        const by = parseInteger(args[2])
        if (by === null) return NOT_INTEGER
        return this.incr(db, args[1], name === 'INCRBY' ? by : -by, args)
      }
      case 'APPEND': {
        if (args.length !== 3) return WRONG_ARGS(name)
        const old = this.data.get(db, args[1])
        const value = old ? Buffer.concat([old, args[2]]) : args[2]
        const effect = this.syncMode === 'manual' ? ['SET', args[1], value] : args
        return this.write(db, effect, this.data.set(db, args[1], value), integer(value.length))
      }
      case 'INFO':
        return this.info(args)
      case 'CONFIG':
        return configCommand(args, this.commandStats)
      case 'REPLCONF':
        return this.replconf(socket, args)
      case 'PSYNC':
        return this.psync(socket, args)
      case 'SYNC':
        void this.fullSync(this.link(socket), '')
        return NO_REPLY
      case 'WAIT':
        return this.wait(args)
      case 'SYNCREPLICAS':
        return integer(this.syncReplicas())
      case 'ROLE':
        return array([bulk('master'), integer(this.backlog.offset), array([...this.links.values()].map((link) => array([bulk(link.ip), bulk(String(link.listeningPort)), bulk(String(link.ackOffset))])))])
      default:
        return error(`ERR unknown command '${name.toLowerCase()}'`)
    }
  }

  /** Propagates a write and answers once it is durable. */
  private write(db: number, effect: readonly Arg[], durable: Promise<unknown>, reply: Encoded): Promise<Encoded> {
    this.propagate(db, effect)
    return durable.then(() => reply)
  }

  private set(db: number, args: Buffer[], setnx = false): Encoded | Promise<Encoded> {
    if (args.length < 3) return WRONG_ARGS('set')
    let nx = false
    let xx = false
    let get = false
    for (const option of args.slice(3)) {
      const word = option.toString('latin1').toUpperCase()
      if (word === 'NX') nx = true
      else if (word === 'XX') xx = true
      else if (word === 'GET') get = true
      else if (['EX', 'PX', 'EXAT', 'PXAT', 'KEEPTTL'].includes(word)) return error('ERR key expiry is not supported by this server')
      else return error('ERR syntax error')
    }
    if (nx && xx) return error('ERR syntax error')
    const [, key, value] = args
    const old = this.data.get(db, key)
    const skip = (nx && old !== undefined) || (xx && old === undefined)
    const reply = setnx ? integer(skip ? 0 : 1) : get ? bulk(old ?? null) : skip ? NULL_BULK : OK
    if (skip) return reply
    return this.write(db, ['SET', key, value], this.data.set(db, key, value), reply)
  }

  private incr(db: number, key: Buffer, by: number, args: Buffer[]): Encoded | Promise<Encoded> {
    const old = this.data.get(db, key)
    const current = old === undefined ? 0 : parseInteger(old)
    if (current === null) return NOT_INTEGER
    const next = current + by
    if (!Number.isSafeInteger(next)) return error('ERR increment or decrement would overflow')
    const value = Buffer.from(String(next))
    const effect = this.syncMode === 'manual' ? ['SET', key, value] : args
    return this.write(db, effect, this.data.set(db, key, value), integer(next))
  }
}

