/**
 * A local site server: the `records` database, a record generated every
 * interval stamped with the synchronised time, and its clock offset to the
 * central kept by SNTP (the central's UDP port is its HTTP port number).
 */
import type {AddressInfo} from 'node:net'

import {sendJson, SiteHttp} from './http.js'
import {type Logger, sleep} from './log.js'
import {measureClock} from './sntp.js'
import {RecordStore} from './store.js'

export interface LocalOptions {
  name: string
  host?: string
  port?: number
  dataDir: string
  /** The central's URL; its host and port number are also its SNTP address. */
  central?: string
  /** Milliseconds between generated records; 0 generates none. Default 1000. */
  generateMs?: number
  /** Milliseconds between clock synchronisations. Default 10000. */
  syncMs?: number
  log?: Logger
}

export interface ClockState {
  offsetMs: number | null
  delayMs: number | null
  lastSync: string | null
}

export class LocalServer {
  readonly store: RecordStore
  private readonly http: SiteHttp
  private readonly stopping = new AbortController()
  private readonly log: Logger
  private readonly clock: ClockState = {offsetMs: null, delayMs: null, lastSync: null}
  private lastN = 0
  private generated = 0
  private loops: Promise<void>[] = []

  constructor(private readonly options: LocalOptions) {
    if (!/^[A-Za-z0-9_.-]+$/.test(options.name)) throw new Error(`local name ${JSON.stringify(options.name)}: use letters, digits, '.', '_' or '-'`)
    this.log = options.log ?? (() => {})
    this.store = new RecordStore(options.dataDir)
    this.http = new SiteHttp({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      store: this.store,
      log: (event) => this.log({event: 'error', local: options.name, ...event}),
      extra: async (req, url, res) => {
        if (url.pathname !== '/_status' || req.method !== 'GET') return false
        sendJson(res, 200, this.status())
        return true
      },
    })
  }

  async start(): Promise<AddressInfo> {
    await this.store.open()
    const address = await this.http.start()
    if (this.options.central) this.loops.push(this.syncLoop(new URL(this.options.central)))
    const generateMs = this.options.generateMs ?? 1000
    if (generateMs > 0) this.loops.push(this.generateLoop(generateMs))
    return address
  }

  async stop(): Promise<void> {
    this.stopping.abort()
    await Promise.all(this.loops)
    await this.http.stop()
    await this.store.close()
  }

  /** This machine's time corrected by the measured offset to the central. */
  now(): number {
    return Date.now() + (this.clock.offsetMs ?? 0)
  }

  status(): Record<string, unknown> {
    return {
      name: this.options.name,
      state: 'up',
      records: this.store.info().doc_count,
      updateSeq: this.store.updateSeq,
      uuid: this.store.uuid,
      generated: this.generated,
      clock: {...this.clock},
    }
  }

  /** Creates one record; its number is the synchronised time in microseconds, kept increasing. */
  async generate(): Promise<string> {
    const now = this.now()
    const n = Math.max(this.lastN + 1, Math.round(now * 1000))
    this.lastN = n
    const id = `${this.options.name}:${n}`
    await this.store.put({_id: id, owner: this.options.name, at: new Date(now).toISOString(), value: this.generated})
    this.generated++
    return id
  }

  private async generateLoop(ms: number): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        await this.generate()
      } catch (error) {
        this.log({event: 'failure', local: this.options.name, action: 'generate', error: (error as Error).message})
      }
      await sleep(ms, this.stopping.signal)
    }
  }

  private async syncLoop(central: URL): Promise<void> {
    const port = Number(central.port || (central.protocol === 'https:' ? 443 : 80))
    const host = central.hostname.replace(/^\[|\]$/g, '')
    let failures = 0
    while (!this.stopping.signal.aborted) {
      try {
        const sample = await measureClock(host, port, 5, 1000, this.stopping.signal)
        this.clock.offsetMs = Math.round(sample.offsetMs * 1000) / 1000
        this.clock.delayMs = Math.round(sample.delayMs * 1000) / 1000
        this.clock.lastSync = new Date(this.now()).toISOString()
        if (failures > 0) this.log({event: 'clock', local: this.options.name, state: 'synced'})
        failures = 0
        this.log({event: 'clock', local: this.options.name, offsetMs: this.clock.offsetMs, delayMs: this.clock.delayMs})
      } catch (error) {
        failures++
        this.log({event: 'failure', local: this.options.name, action: 'clock', error: (error as Error).message})
      }
      await sleep(failures > 0 ? Math.min(1000 * 2 ** (failures - 1), this.options.syncMs ?? 10_000) : (this.options.syncMs ?? 10_000), this.stopping.signal)
    }
  }
}
