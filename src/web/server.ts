import {randomBytes, timingSafeEqual} from 'node:crypto'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import os from 'node:os'

import {UsageError} from '../base/index.js'
import type {ClusterBackend, EmbeddedStore} from '../backends/cluster/index.js'
import {parseHostPort} from '../kv/launch.js'
import {fetchStatus} from '../kv/status.js'
import type {Session} from '../ops/session.js'
import {handleApi, type ApiContext} from './api.js'
import {ClusterFeed} from './cluster-feed.js'
import {refuse, sendError} from './http.js'
import type {ClusterView} from './html.js'
import {renderPage} from './pages.js'
import {serveStatic} from './static.js'

export interface WebServerOptions {
  /** The backends, as a file command would see them (flags, environment, .env, config file). */
  session: Session
  /** Address to listen on; default 127.0.0.1. */
  host?: string
  /** Port; 0 (the default) picks a free one. */
  port?: number
  /** The torrent tracker whose pool the Torrents screen shows (`http://HOST:PORT`, with or without `/announce`). */
  tracker?: string
  /** How often the cluster screen's events ask the router, in ms (default 1000). */
  clusterIntervalMs?: number
  log?: (line: string) => void
}

/** With the embedded cluster, how long the console keeps its data dir after the last request ends. */

const STATE_CHANGING = new Set(['POST', 'PUT', 'DELETE', 'PATCH'])

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
}

function sameSecret(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false
  const a = Buffer.from(given)
  const b = Buffer.from(secret)
  return a.length === b.length && timingSafeEqual(a, b)
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::'
const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)

/**
 * The web console's HTTP server (DESIGN.md §13): a token on the first URL,
 * exchanged for an HttpOnly SameSite=Strict cookie; the Host header checked
 * against the bound address (DNS rebinding); a CSRF header on every request
 * that changes anything; `Content-Security-Policy: default-src 'self'`.
 */
export class WebServer {
  /** On the first URL only; valid for the life of the process. */
  readonly token = randomBytes(24).toString('base64url')
  /** Sent back by every state-changing request as X-CSRF-Token; every page carries it in a meta tag. */
  readonly csrf = randomBytes(24).toString('base64url')
  private readonly session = randomBytes(24).toString('base64url')
  private readonly http: Server
  private readonly feed: ClusterFeed
  private readonly api: ApiContext
  private allowedHosts = new Set<string>()
  private address?: {host: string; port: number}

  constructor(readonly options: WebServerOptions) {
    this.feed = new ClusterFeed(async () => (await this.cluster()).status(), options.clusterIntervalMs)
    this.api = {session: options.session, feed: this.feed, cluster: () => this.cluster()}
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => sendError(res, error))
    })
    // Uploads may be slow and event streams long: no request timeout, but idle sockets still go.
    this.http.requestTimeout = 0
  }

  private get cookieName(): string {
    return `disk_client_${this.address?.port ?? 0}`
  }

  async start(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1'
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject)
      this.http.listen(this.options.port ?? 0, host, () => {
        this.http.off('error', reject)
        resolve()
      })
    })
    const port = (this.http.address() as AddressInfo).port
    this.address = {host, port}
    const names = isWildcard(host)
      ? [host, 'localhost', ...Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((item) => item.address))]
      : [host]
    this.allowedHosts = new Set(names.map((name) => hostPort(name, port).toLowerCase()))
  }

  /** `http://HOST:PORT/?token=TOKEN`, the URL the command prints. */
  get url(): string {
    if (!this.address) throw new Error('the web server is not started')
    return `http://${hostPort(this.address.host, this.address.port)}/?token=${this.token}`
  }

  get origin(): string {
    return this.url.replace(/\/\?token=.*$/, '')
  }

  async stop(): Promise<void> {
    this.feed.close()
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve())
      this.http.closeAllConnections()
    })
  }

  /**
   * The cluster the screens show: the router at DISK_CLUSTER (or --router),
   * else the embedded cluster, which this console shares with the other
   * commands on the same data dir (it holds it, or is attached to its holder).
   */
  private async cluster(): Promise<ClusterView> {
    const {session} = this.options
    const text = session.settings.cluster
    if (!text) {
      const store = ((await session.backend('cluster')) as ClusterBackend).store as EmbeddedStore
      return {label: `Embedded cluster, data in ${store.dataDir}`, command: 'disk-client cluster status', status: () => store.status()}
    }
    let router: {host: string; port: number}
    try {
      router = parseHostPort(text)
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    return {label: `Router ${text}`, command: `disk-client cluster status --router ${text}`, status: () => fetchStatus(router)}
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value)
    if (!this.allowedHosts.has(String(req.headers.host ?? '').toLowerCase())) {
      refuse(res, 421, 'EUSAGE', `this console answers only to ${[...this.allowedHosts][0]} (Host: ${req.headers.host ?? 'none'})`)
      return
    }

    const url = new URL(req.url ?? '/', this.origin)
    const token = url.searchParams.get('token')
    if (token !== null) {
      if (!sameSecret(token, this.token)) {
        refuse(res, 401, 'EAUTH', 'wrong token: open the URL disk-client web printed')
        return
      }

      url.searchParams.delete('token')
      res.writeHead(303, {
        'Set-Cookie': `${this.cookieName}=${this.session}; HttpOnly; SameSite=Strict; Path=/`,
        Location: url.pathname + url.search,
      })
      res.end()
      return
    }

    if (!sameSecret(cookieValue(req.headers.cookie, this.cookieName), this.session)) {
      refuse(res, 401, 'EAUTH', 'not signed in: open the URL disk-client web printed (it carries the token)')
      return
    }

    if (STATE_CHANGING.has(req.method ?? '') && !sameSecret(header(req, 'x-csrf-token'), this.csrf)) {
      refuse(res, 403, 'EAUTH', 'missing or wrong X-CSRF-Token header (the page meta csrf-token)')
      return
    }

    if (url.pathname.startsWith('/api/') && (await handleApi(this.api, req, res, url))) return
    if (url.pathname.startsWith('/static/') && (await serveStatic(req, res, url.pathname))) return
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end()
      return
    }

    if (req.method === 'GET' && (await renderPage(this.pageContext(), res, url))) return
    refuse(res, 404, 'ENOTFOUND_FILE', `no such page: ${req.method} ${url.pathname}`)
  }

  private pageContext() {
    return {session: this.options.session, csrf: this.csrf, tracker: this.options.tracker, cluster: () => this.cluster()}
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}
