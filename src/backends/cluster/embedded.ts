/**
 * The embedded mode (no DISK_CLUSTER): the storage engine runs inside the
 * process that holds the data dir, and every other process that wants the
 * same data dir attaches to that holder through a Unix socket in it.
 *
 * - Holding: a process holds the data dir while it has `server0/` open.
 *   LevelDB takes an fcntl lock on its LOCK file, which the kernel drops when
 *   the process dies (even by SIGKILL), so there are never two holders and a
 *   dead holder never leaves a stale lock. The holder writes its pid to
 *   `lock` (for messages and for older versions, which wait on that file)
 *   and listens on `sock`.
 * - Attaching: a process first connects to `sock`; if that fails (no file, a
 *   refused connect: the holder is gone) it tries to open `server0/` itself.
 *   If that is locked too, a holder is starting or going away; it waits a
 *   little and tries both again.
 * - Taking over: an attached process whose connection to the holder breaks
 *   (the holder exited, or was killed) runs the same steps again, so one of
 *   the attached processes becomes the holder and the others attach to it,
 *   and then retries the operation. Every operation is idempotent (pieces
 *   are content-addressed, deletes and reads repeat harmlessly) or a
 *   compare-and-set, whose retry checks whether the lost attempt was applied.
 *
 * A socket path longer than the kernel's limit (108 bytes with its NUL) is
 * replaced, on Linux, by an abstract socket named after the data dir's real
 * path; elsewhere it is a clear error.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import type {RespClient, RespValue} from '../../kv/client.js'
import {serveConnection} from '../../kv/connection.js'
import {BufferPool, DATABASES, NULL_BULK, OK, array, bulk, error, integer, type Encoded} from '../../kv/resp.js'
import type {ClusterStatus} from '../../kv/status.js'
import {ServerStore} from '../../kv/storage.js'
import {ConflictError, TemporaryError, UsageError} from '../errors.js'
import {allocShared, SHARED_LENT_BYTES} from './hasher.js'
import {LocalClusterStore} from './local-store.js'
import type {ClusterStore, Versioned} from './store.js'

/** How long a process keeps trying to hold or attach before giving up (exit 5). */
const ACQUIRE_WAIT_MS = 30_000
/** Longest Unix socket path Linux takes (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107
/** Tombstones are kept this long before they are purged (as a cluster server does). */
const TOMBSTONE_GRACE_MS = 24 * 3600_000

export interface EmbeddedOptions {
  /** Give up after this long without a holder to attach to or the data dir to hold (default 30 s). */
  acquireWaitMs?: number
  log?: (line: string) => void
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (failure) {
    return (failure as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Where the holder listens: `<dataDir>/sock`, or an abstract socket when that path is too long. */
export async function socketPath(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'sock')
  if (Buffer.byteLength(file) <= MAX_SOCKET_PATH) return file
  if (process.platform !== 'linux') {
    throw new UsageError(
      `the embedded cluster's data dir path is too long for its Unix socket (${Buffer.byteLength(file)} bytes, the limit is ${MAX_SOCKET_PATH}): set DISK_DATA_DIR to a shorter path`,
    )
  }
  const real = await fs.realpath(dataDir)
  return `\0disk-client-${createHash('sha256').update(real).digest('hex').slice(0, 32)}`
}

const isLocked = (failure: unknown): boolean =>
  (failure as {code?: string; cause?: {code?: string}})?.cause?.code === 'LEVEL_LOCKED' || (failure as {code?: string})?.code === 'LEVEL_LOCKED'

/** Replays what an older embedded router kept in `router/` (buffered writes and hints for server 0) into `server0/`, then removes it. */
async function migrateRouterDir(dataDir: string, engine: ServerStore, log: (line: string) => void): Promise<number> {
  const dir = path.join(dataDir, 'router')
  if (!(await fs.stat(dir).catch(() => null))) return 0
  const {RouterStore} = await import('../../kv/hints.js')
  const old = new RouterStore(dir)
  await old.open()
  let clock = 0
  let replayed = 0
  try {
    clock = await old.loadClock()
    for (const source of [old.bufferedRecords(), old.hintRecords(0)]) {
      for await (const page of source) {
        for (const record of page) {
          await engine.apply(record.key, record.version, record.tomb, record.value)
          clock = Math.max(clock, record.version)
          replayed++
        }
      }
    }
  } finally {
    await old.close()
  }
  // The replayed writes must be on disk before the only other copy goes.
  await engine.syncNow()
  await fs.rm(dir, {recursive: true, force: true})
  log(`embedded cluster: moved ${replayed} pending write(s) from the old router dir into server0/`)
  // The old router may have issued versions up to 2 s past its saved mark.
  return clock + 2000 * 1024
}

/** The commands a holder answers on its socket (each with the database first), and their argument counts. */
const ARITY: Record<string, [number, number]> = {GETV: [3, 3], VERSION: [3, 3], CAS: [4, 5], GET: [3, 3], SET: [4, 4], DEL: [3, 1e9], EXISTS: [3, 1e9], KEYS: [3, 3]}

/** This process holds the data dir: the engine, and the socket other processes attach to. */
class Holder {
  private readonly sockets = new Set<net.Socket>()
  private purgeTimer: NodeJS.Timeout | undefined

  private constructor(
    readonly local: LocalClusterStore,
    private readonly engine: ServerStore,
    private readonly server: net.Server,
    private readonly dataDir: string,
    private readonly address: string,
  ) {
    server.on('connection', (socket) => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
      serveConnection(socket, (args) => this.dispatch(args))
    })
    this.purgeTimer = setInterval(() => void local.purgeTombstones(TOMBSTONE_GRACE_MS).catch(() => undefined), 60_000)
    this.purgeTimer.unref()
  }

  /** Opens the data dir if no other process has it; null when another holds it. */
  static async tryHold(dataDir: string, address: string, log: (line: string) => void): Promise<Holder | null> {
    const engine = new ServerStore(path.join(dataDir, 'server0'))
    try {
      // The scan of every header (digests, counts, the highest version,
      // leftover blobs) waits for the first write: a command that only
      // reads (ls, or a sync with nothing to do) skips it.
      await engine.open({deferScan: true})
    } catch (failure) {
      if (isLocked(failure)) return null
      // Opened but not usable: let go of the lock before giving up.
      await engine.close().catch(() => undefined)
      throw failure
    }

    let holder: Holder | undefined
    try {
      const observed = await migrateRouterDir(dataDir, engine, log)
      const local = new LocalClusterStore(engine, dataDir, observed)
      const server = net.createServer()
      // The holder (its 'connection' handler) exists before the socket
      // listens: a process that attaches while the steps below are still
      // running is served (and tracked, so close() ends its connection).
      // Built after listening, such a connection was accepted with nobody
      // serving it: its commands never got a reply, and close() waited for
      // it forever (see docs/cluster-files.md).
      holder = new Holder(local, engine, server, dataDir, address)
      // We hold the LevelDB lock, so a socket file left here is a dead holder's.
      if (!address.startsWith('\0')) await fs.rm(address, {force: true})
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(address, () => {
          server.off('error', reject)
          resolve()
        })
      })
      if (!address.startsWith('\0')) await fs.chmod(address, 0o600).catch(() => undefined)
      await fs.writeFile(path.join(dataDir, 'lock'), String(process.pid))
      return holder
    } catch (failure) {
      if (holder) await holder.close().catch(() => undefined)
      else await engine.close().catch(() => undefined)
      throw failure
    }
  }

  status(): Promise<ClusterStatus> {
    return this.local.status(`process ${process.pid}`)
  }

  private dispatch(args: Buffer[]): Encoded | Promise<Encoded> {
    const name = args[0].toString('latin1').toUpperCase()
    if (name === 'PING') return bulk('PONG')
    if (name === 'STATUS') return this.status().then((status) => bulk(JSON.stringify(status)))
    if (name === 'CAPACITY') return this.local.capacity().then(({total, free}) => array([integer(total ?? -1), integer(free ?? -1)]))
    const arity = ARITY[name]
    if (!arity) return error(`ERR unknown command '${name.slice(0, 64)}'`)
    if (args.length < arity[0] || args.length > arity[1]) return error(`ERR wrong number of arguments for '${name.toLowerCase()}'`)
    const db = Number(args[1]?.toString('latin1'))
    if (!Number.isInteger(db) || db < 0 || db >= DATABASES) return error('ERR DB index is out of range')
    const key = args[2]?.toString()
    const run = async (): Promise<Encoded> => {
      switch (name) {
        case 'GETV': {
          const found = await this.local.getVersioned(db, key!)
          return found ? array([bulk(found.value), bulk(found.version)]) : NULL_BULK
        }
        case 'VERSION':
          return bulk(await this.local.currentVersion(db, key!))
        case 'CAS': {
          const expected = args[3].length === 0 ? null : args[3].toString('latin1')
          const value = args.length === 5 ? args[4] : null
          const version = await this.local.compareAndSet(db, key!, expected, value)
          return version === null ? error('CASFAIL the current version differs') : bulk(version)
        }
        case 'GET':
          return bulk(await this.local.get(db, key!))
        case 'SET':
          await this.local.set(db, key!, args[3])
          return OK
        case 'DEL':
          await this.local.del(
            db,
            args.slice(2).map((arg) => arg.toString()),
          )
          return OK
        case 'EXISTS': {
          const found = await this.local.existsMany(
            db,
            args.slice(2).map((arg) => arg.toString()),
          )
          return array(found.map((one) => integer(one ? 1 : 0)))
        }
        case 'KEYS':
          return array((await this.local.keys(db, key!)).map((one) => bulk(one)))
        default:
          return error(`ERR unknown command '${name.slice(0, 64)}'`)
      }
    }
    return run().catch((failure: unknown) => {
      if (failure instanceof ConflictError && failure.reason === 'no-space') return error(`NOSPACE ${failure.message}`)
      return error(`ERR ${(failure as Error).message.replace(/[\r\n]/g, ' ')}`)
    })
  }

  /** Stops serving (attached processes then take over), then closes the engine: everything written is fsync'd. */
  async close(): Promise<void> {
    clearInterval(this.purgeTimer)
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const socket of this.sockets) socket.destroy()
    await closed
    await this.engine.close()
    const lock = path.join(this.dataDir, 'lock')
    if ((await fs.readFile(lock, 'utf8').catch(() => '')).trim() === String(process.pid)) await fs.rm(lock, {force: true})
  }
}

/**
 * The RESP client, loaded when this process first attaches to a holder (a
 * holder never needs it, nor redis-parser). Until then no error can be one
 * of its errors.
 */
let clientModule: typeof import('../../kv/client.js') | undefined
const isConnectionError = (failure: unknown): failure is Error =>
  clientModule !== undefined && failure instanceof clientModule.RespConnectionError
const isReplyError = (failure: unknown, code: string): boolean =>
  clientModule !== undefined && failure instanceof clientModule.RespReplyError && failure.code === code

const asBuffer = (value: RespValue): Buffer | null => (value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(String(value)))

/** This process is attached to the holder: the operations go over its socket, pipelined. */
class Attached {
  constructor(readonly client: RespClient) {}

  static async tryAttach(address: string): Promise<Attached | null> {
    // No socket file, no holder (an abstract socket has no file: always try).
    if (!address.startsWith('\0') && !(await fs.lstat(address).catch(() => null))) return null
    clientModule ??= await import('../../kv/client.js')
    try {
      return new Attached(await clientModule.RespClient.connect({host: 'embedded', port: 0, path: address, connectTimeoutMs: 2000, idleTimeoutMs: 60_000}))
    } catch (failure) {
      if (isConnectionError(failure)) return null
      throw failure
    }
  }

  async call(...args: Array<string | number | Buffer>): Promise<RespValue> {
    try {
      return await this.client.call(...args)
    } catch (failure) {
      if (isReplyError(failure, 'NOSPACE')) {
        throw new ConflictError("no space left on the embedded cluster's disk", 'no-space', {backendCode: 'NOSPACE'})
      }
      throw failure
    }
  }
}

type Mode = {kind: 'holder'; holder: Holder} | {kind: 'attached'; attached: Attached}

/**
 * The embedded cluster as one `ClusterStore`, whichever process holds the
 * data dir: operations run on the engine when this process holds it, and go
 * to the holder otherwise; a lost holder is replaced and the operation
 * retried.
 */
export class EmbeddedStore implements ClusterStore {
  private mode: Promise<Mode> | null = null
  /** What `mode` resolved to, once it has. */
  private settled: Mode | null = null
  private closed = false
  /** Pieces the holder reads for this process land in these recycled buffers (see recycle()). */
  private readonly piecePool = new BufferPool(256 * 1024, 24, allocShared, SHARED_LENT_BYTES)

  private constructor(
    readonly dataDir: string,
    private readonly address: string,
    private readonly options: EmbeddedOptions,
  ) {}

  static async open(dataDir: string, options: EmbeddedOptions = {}): Promise<EmbeddedStore> {
    await fs.mkdir(dataDir, {recursive: true})
    const store = new EmbeddedStore(dataDir, await socketPath(dataDir), options)
    await store.current()
    return store
  }

  /** Whether this process holds the data dir right now (tests, messages). */
  async holding(): Promise<boolean> {
    return (await this.current()).kind === 'holder'
  }

  private current(): Promise<Mode> {
    if (this.closed) return Promise.reject(new TemporaryError('the embedded cluster is closed'))
    if (!this.mode) {
      const pending = this.acquire()
      this.mode = pending
      pending.then(
        (mode) => {
          if (this.mode === pending) this.settled = mode
        },
        () => {
          if (this.mode === pending) this.mode = null
        },
      )
    }
    return this.mode
  }

  /** Drops a holder connection that broke, so the next operation finds the next holder. */
  private forget(mode: Mode): void {
    if (this.settled !== mode) return
    this.settled = null
    this.mode = null
  }

  /** Attach to the holder, or hold the data dir, whichever works first. */
  private async acquire(): Promise<Mode> {
    const log = this.options.log ?? (() => undefined)
    const deadline = Date.now() + (this.options.acquireWaitMs ?? ACQUIRE_WAIT_MS)
    for (let attempt = 0; ; attempt++) {
      const attached = await Attached.tryAttach(this.address)
      if (attached) {
        log(`embedded cluster: attached to the process holding ${this.dataDir}`)
        return {kind: 'attached', attached}
      }
      const holder = await Holder.tryHold(this.dataDir, this.address, log)
      if (holder) {
        log(`embedded cluster: holding ${this.dataDir} (other processes attach through its socket)`)
        return {kind: 'holder', holder}
      }
      if (Date.now() > deadline) {
        const pid = Number((await fs.readFile(path.join(this.dataDir, 'lock'), 'utf8').catch(() => '')).trim())
        const who = Number.isInteger(pid) && pid > 0 && alive(pid) ? `process ${pid}` : 'another process'
        throw new TemporaryError(
          `the embedded cluster's data dir ${this.dataDir} is held by ${who}, which does not answer on its socket; wait for it to finish, or run a cluster and set DISK_CLUSTER`,
        )
      }
      // A holder is starting (not listening yet) or going away (lock not yet released).
      await sleep(Math.min(10 * (attempt + 1), 100))
    }
  }

  /**
   * Runs one operation on whichever side is current. A broken connection to
   * the holder means it went away: the next holder is found (perhaps this
   * process) and the operation runs again; `retried` tells it so.
   */
  private async run<T>(local: (store: LocalClusterStore) => Promise<T>, remote: (attached: Attached, retried: boolean) => Promise<T>): Promise<T> {
    const deadline = Date.now() + (this.options.acquireWaitMs ?? ACQUIRE_WAIT_MS)
    let retried = false
    for (;;) {
      const mode = await this.current()
      if (mode.kind === 'holder') return local(mode.holder.local)
      try {
        return await remote(mode.attached, retried)
      } catch (failure) {
        if (!isConnectionError(failure) || this.closed) throw failure
        if (this.settled === mode) this.options.log?.(`embedded cluster: lost the holder (${failure.message}); finding the next one`)
        this.forget(mode)
        if (Date.now() > deadline) throw new TemporaryError(`embedded cluster unavailable: ${failure.message}`, {cause: failure})
        retried = true
      }
    }
  }

  getVersioned(db: number, key: string): Promise<Versioned | null> {
    return this.run(
      (local) => local.getVersioned(db, key),
      async (remote) => {
        const reply = await remote.call('GETV', db, key)
        return Array.isArray(reply) ? {value: asBuffer(reply[0]) ?? Buffer.alloc(0), version: String(asBuffer(reply[1]))} : null
      },
    )
  }

  currentVersion(db: number, key: string): Promise<string | null> {
    return this.run(
      (local) => local.currentVersion(db, key),
      async (remote) => {
        const reply = await remote.call('VERSION', db, key)
        return reply === null ? null : String(asBuffer(reply))
      },
    )
  }

  compareAndSet(db: number, key: string, expected: string | null, value: Buffer | null): Promise<string | null> {
    return this.run(
      (local) => local.compareAndSet(db, key, expected, value),
      async (remote, retried) => {
        try {
          const args: Array<string | number | Buffer> = ['CAS', db, key, expected ?? '']
          if (value !== null) args.push(value)
          return String(asBuffer(await remote.call(...args)))
        } catch (failure) {
          if (!isReplyError(failure, 'CASFAIL')) throw failure
          if (!retried) return null
          // The attempt that lost its holder may have been applied: if the
          // key now holds exactly what this write wanted, it was (or an
          // identical write won, which leaves the same state).
          const now = await remote.call('GETV', db, key)
          if (value === null) return now === null ? '0' : null
          return Array.isArray(now) && asBuffer(now[0])?.equals(value) ? String(asBuffer(now[1])) : null
        }
      },
    )
  }

  async versionOf(db: number, key: string): Promise<{version: string; size: number} | null> {
    const found = await this.getVersioned(db, key)
    return found && {version: found.version, size: found.value.length}
  }

  get(db: number, key: string): Promise<Buffer | null> {
    return this.run(
      (local) => local.get(db, key),
      async (remote) => asBuffer(await remote.call('GET', db, key)),
    )
  }

  set(db: number, key: string, value: Buffer): Promise<void> {
    return this.run(
      (local) => local.set(db, key, value),
      async (remote) => {
        await remote.call('SET', db, key, value)
      },
    )
  }

  async del(db: number, keys: string[]): Promise<void> {
    if (keys.length === 0) return
    return this.run(
      (local) => local.del(db, keys),
      async (remote) => {
        await remote.call('DEL', db, ...keys)
      },
    )
  }

  async existsMany(db: number, keys: string[]): Promise<boolean[]> {
    if (keys.length === 0) return []
    return this.run(
      (local) => local.existsMany(db, keys),
      async (remote) => {
        const reply = await remote.call('EXISTS', db, ...keys)
        return Array.isArray(reply) ? reply.map((one) => one === 1) : keys.map(() => false)
      },
    )
  }

  keys(db: number, pattern: string): Promise<string[]> {
    return this.run(
      (local) => local.keys(db, pattern),
      async (remote) => {
        const reply = await remote.call('KEYS', db, pattern)
        return Array.isArray(reply) ? reply.map((one) => String(asBuffer(one))) : []
      },
    )
  }

  /**
   * One place holds every key: "this store". It is not asked whether it has
   * the key first (a read finds out, and a missing piece reads as null,
   * exactly as a store that said it had none).
   */
  async locate(_db: number, _key: string): Promise<string[]> {
    return ['embedded']
  }

  /** As get(); in the holder, a piece is read into a recycled buffer (see recycle()). */
  readFrom(_address: string, db: number, key: string): Promise<Buffer | null> {
    return this.run(
      (local) => local.getPooled(db, key, this.piecePool),
      async (remote) => asBuffer(await remote.call('GET', db, key)),
    )
  }

  /** Takes back a value readFrom() returned, once nothing uses it any more. */
  recycle(buffer: Buffer): void {
    this.piecePool.release(buffer)
  }

  capacity(): Promise<{total: number | null; free: number | null}> {
    return this.run(
      (local) => local.capacity(),
      async (remote) => {
        const reply = await remote.call('CAPACITY')
        const [total, free] = Array.isArray(reply) ? reply.map(Number) : [-1, -1]
        return {total: total >= 0 ? total : null, free: free >= 0 ? free : null}
      },
    )
  }

  /** The `cluster status` view: one server, the holder. */
  status(): Promise<ClusterStatus> {
    return this.run(
      (local) => local.status(`process ${process.pid} (this one)`),
      async (remote) => JSON.parse(String(asBuffer(await remote.call('STATUS')))) as ClusterStatus,
    )
  }

  /** Lets go: a holder stops serving (an attached process takes over) and closes the engine. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const mode = await this.mode?.catch(() => null)
    this.mode = null
    if (mode?.kind === 'holder') await mode.holder.close()
    else mode?.attached.client.close()
  }
}
