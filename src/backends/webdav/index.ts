import http from 'node:http'
import https from 'node:https'
import {Readable, Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {text as readText} from 'node:stream/consumers'

import type {About, BackendFactory, Entry, RemoveOptions, StorageAdapter, TransferOptions, WriteOptions, ReadOptions} from '../adapter.js'
import {AuthError, ConflictError, DiskError, NotFoundError, OperationFailedError, TemporaryError, UsageError} from '../errors.js'
import {HashingStream, isSelfVerifying, namesIn, verifyDigests} from '../hashing.js'
import {baseName, isWithin, normalizePath, parentOf} from '../remote-path.js'
import {parseRetryAfter, withRetries} from '../retry.js'
import {parseMultistatus, type DavResource} from './multistatus.js'

export interface WebDavOptions {
  url: string
  user?: string
  password?: string
  retries?: number
  retryBaseMs?: number
  log?: (message: string) => void
}

const PROPFIND_BODY =
  '<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>'
const QUOTA_BODY =
  '<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>'

/** What a status means at a call site: which NotFoundError kind a 404 and a 409 are. */
interface Expect {
  what: string
  missing?: 'file' | 'dir'
}

/**
 * The WebDAV backend (RFC 4918) over node:http: PROPFIND depth 0/1 for stat
 * and list, MKCOL, streamed PUT and GET, server-side COPY and MOVE with
 * Overwrite, DELETE; basic auth. A small client of our own rather than the
 * `webdav` package: it streams both ways with node's own sockets and keeps
 * the exact status of each reply, which the exit codes need.
 */
export class WebDavBackend implements StorageAdapter {
  readonly name = 'webdav'
  private readonly base: URL
  private readonly basePath: string
  private readonly agent: http.Agent
  private readonly auth?: string
  private readonly transport: typeof http | typeof https

  constructor(private readonly options: WebDavOptions) {
    let url: URL
    try {
      url = new URL(options.url)
    } catch {
      throw new UsageError(`WEBDAV_URL is not a URL: ${options.url}`)
    }

    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`WEBDAV_URL must be http or https: ${options.url}`)
    this.base = url
    this.basePath = url.pathname.replace(/\/+$/, '')
    this.transport = url.protocol === 'https:' ? https : http
    this.agent = new this.transport.Agent({keepAlive: true, maxSockets: 16})
    if (options.user !== undefined || options.password !== undefined) {
      this.auth = 'Basic ' + Buffer.from(`${options.user ?? ''}:${options.password ?? ''}`).toString('base64')
    }
  }

  /** The URL path of a backend path, each segment percent-encoded. */
  private href(path: string, collection = false): string {
    const encoded = path
      .split('/')
      .map((part) => encodeURIComponent(part))
      .join('/')
    const href = this.basePath + (encoded === '/' ? '/' : encoded)
    return collection && !href.endsWith('/') ? href + '/' : href
  }

  /** The backend path of an href from a multistatus (already percent-decoded). */
  private pathOf(href: string): string | undefined {
    let base: string
    try {
      base = decodeURIComponent(this.basePath)
    } catch {
      base = this.basePath
    }

    if (href !== base && !href.startsWith(base + '/')) return undefined
    return normalizePath('/' + href.slice(base.length))
  }

  private async send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: Buffer | Readable,
    signal?: AbortSignal,
    collection = false,
  ): Promise<http.IncomingMessage> {
    const all: Record<string, string> = {...headers}
    if (this.auth) all.Authorization = this.auth
    if (Buffer.isBuffer(body)) all['Content-Length'] = String(body.length)
    return new Promise((resolve, reject) => {
      const req = this.transport.request(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port,
          method,
          path: this.href(path, collection),
          headers: all,
          agent: this.agent,
          signal,
        },
        resolve,
      )
      req.on('error', (error) => reject(networkError(error, `${method} ${path}`)))
      if (body === undefined) req.end()
      else if (Buffer.isBuffer(body)) req.end(body)
      else {
        body.once('error', (error) => {
          req.destroy(error)
          reject(error)
        })
        body.pipe(req)
      }
    })
  }

  /** Sends a request whose reply we read whole (small), retrying temporary failures. */
  private async call(method: string, path: string, headers: Record<string, string>, body?: Buffer, collection = false) {
    return withRetries(
      async () => {
        const res = await this.send(method, path, headers, body, undefined, collection)
        const text = await readText(res)
        return {status: res.statusCode ?? 0, headers: res.headers, text}
      },
      {retries: this.options.retries ?? 0, baseMs: this.options.retryBaseMs},
    )
  }

  private async propfind(path: string, depth: '0' | '1', expect: Expect, body = PROPFIND_BODY): Promise<DavResource[]> {
    const headers = {Depth: depth, 'Content-Type': 'application/xml; charset=utf-8'}
    let reply = await this.call('PROPFIND', path, headers, Buffer.from(body), depth === '1')
    // Servers redirect a collection named without its trailing slash (Apache's mod_dir): ask again with it.
    if ((reply.status === 301 || reply.status === 302 || reply.status === 307 || reply.status === 308) && depth === '0' && path !== '/') {
      reply = await this.call('PROPFIND', path, headers, Buffer.from(body), true)
    }

    if (reply.status !== 207) throw statusError(reply.status, reply.headers, expect)
    try {
      return parseMultistatus(reply.text)
    } catch (error) {
      throw new OperationFailedError(`${expect.what}: the server sent a multistatus we cannot parse`, {cause: error})
    }
  }

  private toEntry(path: string, resource: DavResource): Entry {
    return {
      name: baseName(path),
      path,
      type: resource.collection ? 'dir' : 'file',
      size: resource.collection ? null : (resource.size ?? 0),
      modified: resource.modified,
    }
  }

  async stat(path: string): Promise<Entry> {
    const what = `cannot stat ${path}`
    const resources = await this.propfind(path, '0', {what, missing: 'file'})
    const self = resources.find((r) => this.pathOf(r.href) === path) ?? resources[0]
    if (!self) throw new OperationFailedError(`${what}: empty multistatus`)
    return this.toEntry(path, self)
  }

  async *list(dir: string): AsyncIterable<Entry> {
    const what = `cannot list ${dir}`
    let resources: DavResource[]
    try {
      resources = await this.propfind(dir, '1', {what, missing: 'dir'})
    } catch (error) {
      // Servers answer `file/` with 404, 301 or other things: say it is a file when it is one.
      if (error instanceof AuthError || error instanceof TemporaryError || dir === '/') throw error
      const entry = await this.stat(dir).catch(() => undefined)
      if (entry?.type === 'file') throw new ConflictError(`${what}: not a directory`, 'not-directory')
      throw error
    }

    const entries: Entry[] = []
    let self: DavResource | undefined
    for (const resource of resources) {
      const path = this.pathOf(resource.href)
      if (path === undefined) continue
      if (path === dir) {
        self = resource
        continue
      }

      if (parentOf(path) !== dir) continue
      if (resource.status !== 0 && (resource.status < 200 || resource.status >= 300)) continue
      entries.push(this.toEntry(path, resource))
    }

    if (self && !self.collection) throw new ConflictError(`${what}: not a directory`, 'not-directory')
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    yield* entries
  }

  async mkdir(path: string): Promise<Entry> {
    const what = `cannot create directory ${path}`
    const reply = await this.call('MKCOL', path, {}, undefined, true)
    // 405: something exists there; 409: a parent is missing.
    if (reply.status === 405) throw new ConflictError(`${what}: already exists`, 'exists')
    if (reply.status !== 201) {
      // A file in the way makes some servers answer 301 or 409 for `path/`: say what is there.
      const existing = await this.stat(path).catch(() => undefined)
      if (existing) throw new ConflictError(`${what}: already exists`, 'exists')
      throw statusError(reply.status, reply.headers, {what, missing: 'dir'})
    }

    return {name: baseName(path), path, type: 'dir', size: null, modified: null}
  }

  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    if (path === '/') throw new UsageError('refusing to remove the root directory')
    const what = `cannot remove ${path}`
    const entry = await this.stat(path)
    if (entry.type === 'dir' && !options.recursive) throw new UsageError(`${what}: is a directory; use -r`)
    const reply = await this.call('DELETE', path, {}, undefined, entry.type === 'dir')
    if (reply.status !== 204 && reply.status !== 200 && reply.status !== 202) {
      throw statusError(reply.status, reply.headers, {what, missing: 'file'})
    }
  }

  async openRead(path: string, options: ReadOptions = {}): Promise<Readable> {
    const what = `cannot read ${path}`
    const entry = options.entry?.path === path ? options.entry : await this.stat(path)
    if (entry.type === 'dir') throw new UsageError(`${what}: is a directory`)
    const res = await withRetries(
      async () => {
        const res = await this.send('GET', path, {}, undefined, options.signal)
        if (res.statusCode !== 200) {
          res.resume()
          throw statusError(res.statusCode ?? 0, res.headers, {what, missing: 'file'})
        }

        return res
      },
      {retries: this.options.retries ?? 0, baseMs: this.options.retryBaseMs, signal: options.signal},
    )
    const expected = Number(res.headers['content-length'])
    if (!Number.isFinite(expected)) return res
    // A connection cut short ends the stream early: fail it rather than deliver a short file.
    let received = 0
    const checked = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length
        callback(null, chunk)
      },
      flush(callback) {
        callback(received === expected ? null : new TemporaryError(`${what}: connection closed after ${received} of ${expected} bytes`))
      },
    })
    res.once('aborted', () => checked.destroy(new TemporaryError(`${what}: connection closed`)))
    res.once('error', (error) => checked.destroy(networkError(error, what)))
    return res.pipe(checked)
  }

  async write(path: string, source: Readable, options: WriteOptions = {}): Promise<Entry> {
    const what = `cannot write ${path}`
    const headers: Record<string, string> = {'Content-Type': 'application/octet-stream'}
    // If-None-Match: * makes the server refuse an existing file atomically (412).
    if (!options.overwrite) headers['If-None-Match'] = '*'
    if (options.size !== undefined) headers['Content-Length'] = String(options.size)
    // The hashes are checked before the body ends: a mismatch aborts the PUT, so no bad file lands.
    const hashing = new VerifyingStream(what, options.expect, (total) => options.onProgress?.(total), isSelfVerifying(source) ? [] : namesIn(options.expect))
    // One stream between the source and the socket: it counts, hashes and checks before the body ends.
    const body = hashing
    const feeding = pipeline(source, body, {signal: options.signal})
    // Handled below; an early error reply stops the feeding without an unhandled rejection.
    feeding.catch(() => {})
    let res: http.IncomingMessage
    try {
      res = await this.send('PUT', path, headers, body, options.signal)
    } catch (error) {
      body.destroy()
      await feeding.catch((feedError: unknown) => {
        // The source's own failure (a hash mismatch, a read error) says more than the aborted request.
        throw feedError instanceof DiskError ? feedError : error
      })
      throw networkError(error, what)
    }

    const status = res.statusCode ?? 0
    res.resume()
    if (status === 201 || status === 204 || status === 200) {
      await feeding
    } else {
      body.destroy()
      if (status === 412) throw new ConflictError(`${what}: destination already exists`, 'exists', {hint: 'use --overwrite'})
      if (status === 405) throw new ConflictError(`${what}: is an existing directory`, 'is-directory')
      throw statusError(status, res.headers, {what, missing: 'dir'})
    }

    return {name: baseName(path), path, type: 'file', size: hashing.bytes, modified: new Date().toISOString()}
  }

  private async transfer(method: 'COPY' | 'MOVE', src: string, dst: string, options: TransferOptions): Promise<Entry> {
    const what = `cannot ${method.toLowerCase()} ${src} to ${dst}`
    if (src === '/') throw new UsageError(`${what}: cannot ${method.toLowerCase()} the root`)
    if (isWithin(dst, src)) throw new UsageError(`${what}: destination is inside the source`)
    const entry = await this.stat(src)
    const existing = await this.stat(dst).catch((error: unknown) => {
      if (error instanceof NotFoundError) return undefined
      throw error
    })
    if (existing?.type === 'dir') throw new ConflictError(`${what}: ${dst} is an existing directory`, 'is-directory')
    if (existing && !options.overwrite) throw new ConflictError(`${what}: destination already exists`, 'exists', {hint: 'use --overwrite'})
    const collection = entry.type === 'dir'
    const destination = new URL(this.href(dst, collection), this.base).href
    const headers: Record<string, string> = {Destination: destination, Overwrite: options.overwrite ? 'T' : 'F'}
    if (collection) headers.Depth = 'infinity'
    const reply = await this.call(method, src, headers, undefined, collection)
    if (reply.status === 412) throw new ConflictError(`${what}: destination already exists`, 'exists', {hint: 'use --overwrite'})
    if (reply.status === 409) throw new NotFoundError(`${what}: parent directory ${parentOf(dst)} not found`, 'dir')
    if (reply.status !== 201 && reply.status !== 204) throw statusError(reply.status, reply.headers, {what, missing: 'file'})
    return {...entry, name: baseName(dst), path: dst}
  }

  copy(src: string, dst: string, options: TransferOptions = {}): Promise<Entry> {
    return this.transfer('COPY', src, dst, options)
  }

  move(src: string, dst: string, options: TransferOptions = {}): Promise<Entry> {
    return this.transfer('MOVE', src, dst, options)
  }

  /** Quota from the RFC 4331 properties of the root, where the server has them; nulls otherwise. */
  async about(): Promise<About> {
    const [root] = await this.propfind('/', '0', {what: 'cannot read the quota', missing: 'dir'}, QUOTA_BODY)
    const free = root?.quotaAvailable ?? null
    const used = root?.quotaUsed ?? null
    return {total: free !== null && used !== null ? free + used : null, used, free, trash: null}
  }

  async close(): Promise<void> {
    this.agent.destroy()
  }
}

/** Hashes what flows through and fails before its end when a hash differs, so a bad body never completes its PUT. */
class VerifyingStream extends HashingStream {
  constructor(
    private readonly what: string,
    private readonly expected: WriteOptions['expect'],
    ...rest: ConstructorParameters<typeof HashingStream>
  ) {
    super(...rest)
  }

  override _flush(callback: TransformCallback): void {
    try {
      verifyDigests(this.what, this.digests(), this.expected)
      callback()
    } catch (error) {
      callback(error as Error)
    }
  }
}

function networkError(error: unknown, what: string): DiskError {
  if (error instanceof DiskError) return error
  const code = (error as NodeJS.ErrnoException)?.code
  if ((error as Error)?.name === 'AbortError') return new TemporaryError(`${what}: aborted`, {cause: error})
  const reason = code === 'ECONNREFUSED' ? 'connection refused' : code ?? (error as Error)?.message ?? String(error)
  return new TemporaryError(`${what}: ${reason}`, {backendCode: code, cause: error})
}

/** Maps a WebDAV status to the typed errors (DESIGN.md §2 exit codes). */
function statusError(status: number, headers: http.IncomingHttpHeaders, expect: Expect): DiskError {
  const {what} = expect
  const backendCode = `HTTP ${status}`
  switch (status) {
    case 401:
      return new AuthError(`${what}: the server rejected the credentials`, {backendCode, hint: 'check WEBDAV_USER and WEBDAV_PASSWORD'})
    case 403:
      return new AuthError(`${what}: forbidden`, {backendCode})
    case 404:
      return new NotFoundError(`${what}: ${expect.missing === 'dir' ? 'directory' : 'file or directory'} not found`, expect.missing ?? 'file', {backendCode})
    case 409:
      return new NotFoundError(`${what}: parent directory not found`, 'dir', {backendCode})
    case 412:
      return new ConflictError(`${what}: destination already exists`, 'exists', {backendCode})
    case 507:
      return new ConflictError(`${what}: no space left on the server`, 'no-space', {backendCode})
    case 423:
    case 429:
      return new TemporaryError(`${what}: the server is busy (${status})`, {backendCode, retryAfterMs: parseRetryAfter(headers['retry-after'])})
    default:
      if (status >= 500) {
        return new TemporaryError(`${what}: server error`, {backendCode, retryAfterMs: parseRetryAfter(headers['retry-after'])})
      }

      return new OperationFailedError(`${what}: unexpected reply`, {backendCode})
  }
}

export const createWebDavBackend: BackendFactory = async (settings) => {
  if (!settings.webdavUrl) {
    throw new UsageError('the webdav backend needs a server URL', {hint: 'set WEBDAV_URL or `disk-client config set webdav.url URL`'})
  }

  return new WebDavBackend({
    url: settings.webdavUrl,
    user: settings.webdavUser,
    password: settings.webdavPassword,
    retries: settings.retries,
    retryBaseMs: settings.retryBaseMs,
    log: settings.log,
  })
}
