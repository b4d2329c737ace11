/**
 * The central site server: its own `records` database, an SNTP server on UDP
 * at its HTTP port number, and one independent polling loop per local. Each
 * loop pulls (local → central) and, when the local comes back with a new
 * identity (it lost its data) or on POST /_push, pushes (central → local,
 * that local's records only). Every request has its own timeout, so a hung
 * local delays nobody else.
 */
import type {AddressInfo} from 'node:net'

import {CouchClient} from './client.js'
import {CouchError, notFound} from './errors.js'
import {DB_NAME, sendJson, SiteHttp} from './http.js'
import {type Logger, sleep} from './log.js'
import {INITIAL, type PollerState, step} from './poller.js'
import {replicate, type ReplicationResult} from './replicator.js'
import {SntpServer} from './sntp.js'
import {RecordStore} from './store.js'

export interface LocalSpec {
  name: string
  url: string
}

export interface CentralOptions {
  host?: string
  port?: number
  dataDir: string
  locals: LocalSpec[]
  /** Milliseconds between polls of one local. Default 5000. */
  pollMs?: number
  /** The cap of the backoff after failures. Default 30000. */
  maxBackoffMs?: number
  /** Milliseconds added to the served clock (SNTP and /time). Default 0. */
  clockOffsetMs?: number
  /** Per-request timeout in milliseconds. Default 5000. */
  timeoutMs?: number
  /** Wait for a local's changes with a longpoll `_changes` instead of sleeping between polls. */
  longpoll?: boolean
  log?: Logger
}

export interface LinkStatus {
  name: string
  url: string
  state: 'unknown' | 'up' | 'down'
  lastPull: string | null
  lastPush: string | null
  lastSeq: number | string | null
  lag: number | null
  pulled: number
  pushed: number
  errors: number
  clockOffsetMs: number | null
}

interface Link {
  spec: LocalSpec
  client: CouchClient
  poller: PollerState
  status: LinkStatus
  /** The local database's identity at the last contact. */
  uuid?: string
  /** The local's update_seq at the last completed pull. */
  pulledAt?: number
  /** Runs this local's replications one at a time. */
  chain: Promise<unknown>
}

interface DbInfo {
  update_seq: number | string
  uuid?: string
}

export function parseLocalSpec(text: string): LocalSpec {
  const at = text.indexOf('=')
  if (at <= 0) throw new Error(`--local ${text}: want NAME=URL`)
  const name = text.slice(0, at)
  let url = text.slice(at + 1)
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`--local ${text}: the name may hold letters, digits, '.', '_' and '-'`)
  if (!/^https?:\/\//.test(url)) url = `http://${url}`
  try {
    new URL(url)
  } catch {
    throw new Error(`--local ${text}: ${url} is not a URL`)
  }
  return {name, url: url.replace(/\/+$/, '')}
}

export class CentralServer {
  readonly store: RecordStore
  private readonly http: SiteHttp
  private sntp?: SntpServer
  private readonly stopping = new AbortController()
  private readonly log: Logger
  private readonly links = new Map<string, Link>()
  private loops: Promise<void>[] = []
  private self?: CouchClient
  private readonly pollMs: number
  private readonly maxBackoffMs: number
  private readonly timeoutMs: number
  private readonly offsetMs: number

  constructor(private readonly options: CentralOptions) {
    this.log = options.log ?? (() => {})
    this.pollMs = options.pollMs ?? 5000
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000
    this.timeoutMs = options.timeoutMs ?? 5000
    this.offsetMs = options.clockOffsetMs ?? 0
    this.store = new RecordStore(options.dataDir)
    for (const spec of options.locals) {
      if (this.links.has(spec.name)) throw new Error(`local ${spec.name} is named twice`)
      this.links.set(spec.name, {
        spec,
        client: new CouchClient({url: `${spec.url}/${DB_NAME}`, timeoutMs: this.timeoutMs, signal: this.stopping.signal}),
        poller: {...INITIAL},
        status: {name: spec.name, url: spec.url, state: 'unknown', lastPull: null, lastPush: null, lastSeq: null, lag: null, pulled: 0, pushed: 0, errors: 0, clockOffsetMs: null},
        chain: Promise.resolve(),
      })
    }
    this.http = new SiteHttp({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      store: this.store,
      log: (event) => this.log({event: 'error', ...event}),
      extra: (req, url, res) => this.extra(req.method ?? 'GET', url, res),
    })
  }

  async start(): Promise<AddressInfo> {
    await this.store.open()
    const address = await this.http.start()
    try {
      this.sntp = new SntpServer({host: address.address, port: address.port, offsetMs: this.offsetMs})
      await this.sntp.start()
    } catch (error) {
      await this.http.stop()
      await this.store.close()
      throw new Error(`SNTP on udp ${address.address}:${address.port}: ${(error as Error).message}`)
    }
    // Push reads this server's own database over HTTP, through loopback when bound to a wildcard address.
    const selfHost = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '[::1]' : address.family === 'IPv6' ? `[${address.address}]` : address.address
    this.self = new CouchClient({url: `http://${selfHost}:${address.port}/${DB_NAME}`, timeoutMs: this.timeoutMs, signal: this.stopping.signal})
    for (const link of this.links.values()) this.loops.push(this.loop(link))
    return address
  }

  async stop(): Promise<void> {
    this.stopping.abort()
    await Promise.all(this.loops)
    await this.sntp?.stop()
    await this.http.stop()
    await this.store.close()
  }

  now(): number {
    return Date.now() + this.offsetMs
  }

  status(): Record<string, unknown> {
    return {
      name: 'central',
      state: 'up',
      records: this.store.info().doc_count,
      updateSeq: this.store.updateSeq,
      locals: [...this.links.values()].map((link) => ({...link.status})),
    }
  }

  private async extra(method: string, url: URL, res: import('node:http').ServerResponse): Promise<boolean> {
    if (url.pathname === '/time' && method === 'GET') {
      sendJson(res, 200, {now: this.now()})
      return true
    }
    if (url.pathname === '/_status' && method === 'GET') {
      sendJson(res, 200, this.status())
      return true
    }
    if (url.pathname === '/_push') {
      if (method !== 'POST') throw new CouchError(405, 'method_not_allowed', 'Only POST allowed')
      const name = url.searchParams.get('local') ?? ''
      const link = this.links.get(name)
      if (!link) throw notFound(`no local named ${JSON.stringify(name)}`)
      const result = await this.serial(link, () => this.push(link, 'request'))
      sendJson(res, 200, {ok: true, local: name, docsRead: result.docsRead, docsWritten: result.docsWritten, ms: result.ms})
      return true
    }
    return false
  }

  private serial<T>(link: Link, job: () => Promise<T>): Promise<T> {
    const run = link.chain.then(job, job)
    link.chain = run.catch(() => undefined)
    return run
  }

  private async loop(link: Link): Promise<void> {
    const config = {pollMs: this.pollMs, maxBackoffMs: this.maxBackoffMs}
    while (!this.stopping.signal.aborted) {
      let ok = true
      try {
        await this.serial(link, () => this.poll(link))
      } catch (error) {
        ok = false
        if (this.stopping.signal.aborted) break
        link.status.errors++
        this.log({event: 'failure', local: link.spec.name, error: (error as Error).message, failures: link.poller.failures + 1})
      }
      const next = step(link.poller, ok, config)
      link.poller = next.next
      link.status.state = next.next.state
      if (next.changed) this.log({event: 'state', local: link.spec.name, state: next.next.state, ...(ok ? {} : {retryInMs: next.waitMs})})
      if (!ok) await sleep(next.waitMs, this.stopping.signal)
      else if (this.options.longpoll) await this.waitForChanges(link)
      else await sleep(next.waitMs, this.stopping.signal)
    }
  }

  /** Longpoll mode: returns when the local has changes past the last pull (or after a quiet spell, or on an error: the next poll reports it). */
  private async waitForChanges(link: Link): Promise<void> {
    const since = link.status.lastSeq ?? 0
    const quietMs = Math.max(this.pollMs, 1000) * 6
    try {
      await link.client.get(`_changes?feed=longpoll&limit=1&since=${encodeURIComponent(String(since))}&timeout=${quietMs}&heartbeat=${Math.max(Math.floor(quietMs / 3), 500)}`, quietMs + this.timeoutMs)
    } catch {
      await sleep(Math.min(this.pollMs, 1000), this.stopping.signal)
    }
  }

  /** One poll: the local's identity and sequence; a push when it lost its data; a pull when it has news. */
  private async poll(link: Link): Promise<void> {
    const started = Date.now()
    const info = await link.client.get<DbInfo>('')
    const seq = Number(String(info.update_seq).split('-')[0])
    const newIdentity = info.uuid !== undefined && info.uuid !== link.uuid
    if (newIdentity && link.uuid !== undefined) this.log({event: 'identity', local: link.spec.name, was: link.uuid, now: info.uuid})
    let pulled: ReplicationResult | undefined
    if (newIdentity) {
      await this.push(link, link.uuid === undefined ? 'first contact' : 'new identity')
      link.uuid = info.uuid
      link.pulledAt = undefined
    }
    if (link.pulledAt !== seq) {
      // Counted as they are written: a local killed after a batch reached
      // here but before its checkpoint fails this pull, and those documents
      // would never be counted (the next pull finds them present).
      pulled = await replicate(link.client, this.self!, {onWritten: (docs) => (link.status.pulled += docs)})
      link.pulledAt = seq
      link.status.lastPull = new Date().toISOString()
      link.status.lastSeq = pulled.lastSeq
      this.log({event: 'pull', local: link.spec.name, docsRead: pulled.docsRead, docsWritten: pulled.docsWritten, since: pulled.startSeq, lastSeq: pulled.lastSeq, ms: pulled.ms})
    }
    link.status.lag = Math.max(0, seq - Number(String(link.status.lastSeq ?? 0).split('-')[0]))
    try {
      const status = await link.client.request<{clock?: {offsetMs?: number | null}}>('GET', '../_status')
      link.status.clockOffsetMs = status.clock?.offsetMs ?? null
    } catch {
      // A local without /_status (PouchDB's server, a CouchDB) still replicates.
    }
    this.log({event: 'poll', local: link.spec.name, updateSeq: seq, pulled: pulled?.docsWritten ?? 0, ms: Date.now() - started})
  }

  private async push(link: Link, reason: string): Promise<ReplicationResult> {
    const result = await replicate(this.self!, link.client, {owner: link.spec.name, onWritten: (docs) => (link.status.pushed += docs)})
    link.status.lastPush = new Date().toISOString()
    this.log({event: 'push', local: link.spec.name, reason, docsRead: result.docsRead, docsWritten: result.docsWritten, lastSeq: result.lastSeq, ms: result.ms})
    return result
  }
}
