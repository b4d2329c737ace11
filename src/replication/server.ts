import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {appFault, checkParams, RpcFault} from './faults.js'
import {Mutex} from './mutex.js'
import {type BackupRequest, decodeBackupRequest, encodeBackupRequest} from './protocol.js'
import {callRpc, httpUrl} from './rpc-client.js'
import {RpcServer} from './rpc-server.js'
import {KvStore, type Reply, type WriteOp} from './store.js'
import {NO_VIEW, parseView, type View} from './view.js'

export interface ReplicaServerOptions {
  /** The coordinator's URL, e.g. `http://127.0.0.1:7000/`. */
  coordinator: string
  /** Address to bind; default 127.0.0.1. */
  host?: string
  /** Port to bind; 0 (the default) picks a free one. */
  port?: number
  /** The name to ping with; default this server's own URL, `http://HOST:PORT/`. */
  name?: string
  /** Milliseconds per tick (one ping each); 0 turns the timer off so only `tick()` calls ping. Default 100. */
  tickMs?: number
  /** Timeout of a call to the coordinator or a forward to the backup; default 1000. */
  rpcTimeoutMs?: number
  /** Timeout of a whole-state copy to a new backup; default 10000. */
  syncTimeoutMs?: number
  /** Event log (role changes, failures); default: nowhere. */
  log?: (line: string) => void
}

export type Role = 'master' | 'backup' | 'idle'

/**
 * A primary/backup key-value server. It pings the coordinator every tick and
 * acts in the view it gets back:
 * - as master it answers clients, forwarding every operation (reads too) to
 *   the backup and waiting for it; before it acknowledges a view with a new
 *   backup it copies its whole state there;
 * - as backup it refuses clients and takes what the master of its view sends;
 * - idle, it holds nothing.
 * Every client operation and every view switch runs under one lock, so the
 * backup sees operations in the master's order.
 */
export class ReplicaServer {
  private readonly store = new KvStore()
  private readonly lock = new Mutex()
  // Idle sockets are dropped before the peer's 5 s keep-alive timeout can race a new request on them.
  private readonly agent = new http.Agent({keepAlive: true, timeout: 2000})
  /** Aborted by stop(), so no call outlives the server. */
  private readonly stopping = new AbortController()
  private readonly rpc: RpcServer
  private readonly log: (line: string) => void
  private serverName = ''
  /** The newest view heard from the coordinator. */
  private latest: View = {...NO_VIEW}
  /** The view this server acts in; for a master, set only once the backup holds a full copy. Pinged as our number. */
  private adopted: View = {...NO_VIEW}
  /** The newest view number in which our data is known complete (0: none). */
  private validView = 0
  /** A write's forward ended without an answer: the backup may differ, so copy everything before the next forward. */
  private backupDirty = false
  /** The ping in flight, which concurrent ticks join. */
  private pinging?: Promise<{adopted: Promise<void>}>
  private timer?: NodeJS.Timeout
  private coordinatorDown = false
  /** The view number of our last ping the coordinator answered (for a master: the view it has acked). */
  private confirmedView = 0
  private refusedView = 0

  constructor(private readonly options: ReplicaServerOptions) {
    this.log = options.log ?? (() => {})
    this.rpc = new RpcServer({
      host: options.host,
      port: options.port,
      log: this.log,
      methods: {
        put: (params) => this.write('put', params),
        append: (params) => this.write('append', params),
        get: (params) => this.get(params),
        put_backup: (params) => this.putBackup(params),
        tick: (params) => {
          checkParams('tick', params, [])
          return this.tick()
        },
        status: (params) => {
          checkParams('status', params, [])
          return this.status()
        },
      },
    })
  }

  async start(): Promise<AddressInfo> {
    const address = await this.rpc.start()
    this.serverName = this.options.name ?? httpUrl(address)
    const tickMs = this.options.tickMs ?? 100
    if (tickMs > 0) {
      this.timer = setInterval(() => void this.tick(), tickMs)
      void this.tick()
    }
    return address
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    this.stopping.abort()
    await this.rpc.stop()
    this.agent.destroy()
    await this.pinging
    await this.lock.run(() => {})
  }

  /** The name this server pings with. */
  get name(): string {
    return this.serverName
  }

  url(): string {
    return httpUrl(this.rpc.address())
  }

  /** Pings the coordinator once (joining a ping already under way) and acts on the view; resolves with the newest view. */
  async tick(): Promise<View> {
    this.pinging ??= this.ping().finally(() => (this.pinging = undefined))
    const {adopted} = await this.pinging
    await adopted
    return {...this.latest}
  }

  status(): Record<string, unknown> {
    const role: Role = this.roleIn(this.adopted)
    return {
      name: this.serverName,
      role,
      view: {...this.adopted},
      latest: {...this.latest},
      synced_view: this.validView,
      confirmed_view: this.confirmedView,
      keys: this.store.keys,
      requests: this.store.requests,
      digest: this.store.digest(),
    }
  }

  private roleIn(view: View): Role {
    if (view.master === this.serverName) return 'master'
    return view.backup === this.serverName ? 'backup' : 'idle'
  }

  /**
   * Pings with the adopted view's number and queues the answer for adoption
   * under the lock. Only the ping itself is awaited here, so a long operation
   * holding the lock never delays the next ping (which would get a healthy
   * server declared dead).
   */
  private async ping(): Promise<{adopted: Promise<void>}> {
    const sent = this.adopted.number
    let view: View
    try {
      view = parseView(await this.call(this.options.coordinator, 'ping', [sent, this.serverName]))
    } catch (error) {
      if (!this.coordinatorDown) this.log(`cannot reach the coordinator: ${(error as Error).message}`)
      this.coordinatorDown = true
      return {adopted: Promise.resolve()}
    }
    if (this.coordinatorDown) this.log('coordinator reachable again')
    this.coordinatorDown = false
    this.confirmedView = sent
    const adopted = this.lock.run(async () => {
      const before = this.adopted.number
      await this.adopt(view)
      // A master that just took up a new view acks it at once rather than a tick later.
      if (this.adopted.number !== before && this.roleIn(this.adopted) === 'master' && !this.stopping.signal.aborted) void this.tick()
    })
    return {adopted}
  }

  /** Learns the view without pinging, for a backup that hears of a view before its own ping does. */
  private async refreshView(): Promise<void> {
    try {
      const view = parseView(await this.call(this.options.coordinator, 'view', []))
      await this.lock.run(() => this.adopt(view))
    } catch {
      // The request is then judged on the view we have.
    }
  }

  /** Acts on a view from the coordinator. Runs under the lock. */
  private async adopt(view: View): Promise<void> {
    if (view.number < this.latest.number) return
    this.latest = view
    const role = this.roleIn(view)
    if (role === 'master') return this.lead(view)
    if (role === 'idle' && this.validView !== 0) {
      this.store.clear()
      this.validView = 0
    }
    if (view.number !== this.adopted.number) this.log(`view ${view.number}: ${role}`)
    this.adopted = view
  }

  /** Becomes (or stays) master of `view`: copies the state to its backup first, then adopts it, which acks it on the next ping. */
  private async lead(view: View): Promise<void> {
    if (this.adopted.number === view.number && this.adopted.master === this.serverName) return
    const hasData = view.number === 1 || this.validView === view.number - 1 || this.validView === view.number
    if (!hasData) {
      // Only a server holding the data of the view before may lead; never acking leaves the view frozen rather than empty.
      if (this.refusedView !== view.number) this.log(`view ${view.number}: named master but holds no copy of the data; not taking over`)
      this.refusedView = view.number
      return
    }
    if (view.backup) {
      try {
        await this.sync(view)
      } catch (error) {
        this.log(`view ${view.number}: copying the state to ${view.backup} failed, will retry: ${(error as Error).message}`)
        return
      }
    }
    this.adopted = view
    this.validView = view.number
    this.backupDirty = false
    this.log(`view ${view.number}: master${view.backup ? `, backup ${view.backup}` : ', no backup'}`)
  }

  private async sync(view: View): Promise<void> {
    const request: BackupRequest = {view: view.number, from: this.serverName, op: 'sync', snapshot: this.store.snapshot()}
    await this.call(view.backup, 'put_backup', [encodeBackupRequest(request)], this.options.syncTimeoutMs ?? 10_000)
  }

  /** The view to serve a client in, or the fault that says why not. */
  private servingView(): View {
    const {number, master} = this.latest
    if (master !== this.serverName) {
      throw appFault('ErrWrongServer', `${this.serverName} is not the master of view ${number} (the master is ${master || 'nobody'})`)
    }
    if (this.adopted.master !== this.serverName) throw appFault('ErrUnavailable', `${this.serverName} is still taking over view ${number}`)
    return this.adopted
  }

  private write(op: WriteOp, params: unknown[]): Promise<Reply> {
    const [key, value, id] = checkParams(op, params, ['string', 'string'], ['string'])
    const requestId = id === '' ? undefined : id
    return this.lock.run(async () => {
      const view = this.servingView()
      const earlier = requestId === undefined ? undefined : this.store.replyFor(requestId)
      if (earlier !== undefined) return earlier
      await this.forward(view, {view: view.number, from: this.serverName, op, key, value, requestId})
      return this.store.apply(op, key, value, requestId)
    })
  }

  private get(params: unknown[]): Promise<string> {
    const [key] = checkParams('get', params, ['string'])
    return this.lock.run(async () => {
      const view = this.servingView()
      // The backup's confirmation proves no newer master exists: it refuses once it has moved on.
      await this.forward(view, {view: view.number, from: this.serverName, op: 'get', key})
      const value = this.store.get(key)
      if (value === undefined) throw appFault('ErrNoKey', `no key ${JSON.stringify(key)}`)
      return value
    })
  }

  /** Sends one operation to the backup of `view` (if any) and waits for it. */
  private async forward(view: View, request: BackupRequest): Promise<void> {
    if (!view.backup) return
    try {
      if (this.backupDirty) {
        await this.sync(view)
        this.backupDirty = false
      }
      await this.call(view.backup, 'put_backup', [encodeBackupRequest(request)])
    } catch (error) {
      if (error instanceof RpcFault && error.is('ErrWrongServer')) {
        void this.tick()
        throw appFault('ErrWrongServer', `the backup ${view.backup} refused view ${view.number}, so this server may be replaced (${error.faultString})`)
      }
      if (request.op !== 'get') this.backupDirty = true
      throw appFault('ErrUnavailable', `the backup ${view.backup} did not confirm ${request.op}: ${(error as Error).message}`)
    }
  }

  private async putBackup(params: unknown[]): Promise<Reply> {
    const [struct] = checkParams('put_backup', params, ['struct'])
    const request = decodeBackupRequest(struct)
    if (request.view > this.latest.number) await this.refreshView()
    return this.lock.run(() => this.applyFromMaster(request))
  }

  private applyFromMaster(request: BackupRequest): Reply {
    const {number, master, backup} = this.latest
    if (number !== request.view || backup !== this.serverName || master !== request.from) {
      throw appFault(
        'ErrWrongServer',
        `${this.serverName} is not the backup of ${request.from} in view ${request.view} (its view ${number}: master ${master || '-'}, backup ${backup || '-'})`,
      )
    }
    if (request.op === 'sync') {
      this.store.restore(request.snapshot)
      this.validView = request.view
      this.log(`view ${request.view}: backup, got ${this.store.keys} keys from ${request.from}`)
      return 'OK'
    }
    if (this.validView !== request.view) throw appFault('ErrWrongServer', `${this.serverName} has no copy of view ${request.view}'s state yet`)
    if (request.op === 'get') return 'OK'
    return this.store.apply(request.op, request.key, request.value, request.requestId)
  }

  private call(url: string, method: string, params: unknown[], timeoutMs = this.options.rpcTimeoutMs ?? 1000): Promise<unknown> {
    return callRpc(url, method, params, {timeoutMs, agent: this.agent, signal: this.stopping.signal})
  }
}
