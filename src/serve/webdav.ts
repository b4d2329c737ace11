import {createHash, timingSafeEqual} from 'node:crypto'
import http, {type IncomingMessage, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {Readable, Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {Entry, StorageAdapter} from '../backends/adapter.js'
import {recycleWhenSent} from '../backends/recycle.js'
import {AuthError, canSendFile, ConflictError, DiskError, fileRegionOf, NotFoundError, sendFile, TemporaryError, UsageError} from '../base/index.js'
import {isWithin, joinPath, normalizePath, parentOf} from '../backends/remote-path.js'
import {LockManager, parseTimeout, type Lock} from './locks.js'
import {PropStore} from './props.js'
import {child, clark, elements, escapeXml, parseXml, propertyXml, serialize, XmlError, type XmlElement} from './xml.js'

export interface WebDavServerOptions {
  adapter: StorageAdapter
  host: string
  port: number
  /** Basic auth; both or neither. */
  user?: string
  pass?: string
  /** The dead-property store (a JSON file). */
  propsFile: string
  log?: (line: string) => void
}

const DAV = 'DAV:'
/** Live properties we compute; PROPPATCH may not set them (403). */
const LIVE = ['creationdate', 'displayname', 'getcontentlength', 'getcontenttype', 'getetag', 'getlastmodified', 'lockdiscovery', 'resourcetype', 'supportedlock']
const MAX_BODY = 1 << 20
/**
 * A whole-file GET reads in chunks of this size (a hint to the backend; the
 * local backend's reads otherwise go 4 MiB at a time for large files, the
 * cluster's piece size). 1 MiB against 4 MiB, 256 MiB to curl -o FILE, 12-16
 * alternating rounds at load 8-9: 178/169/199% of Apache's rate against
 * 145/143/157% in three runs, curl's system time 0.30-0.35 s against
 * 0.33-0.39 s; our server's CPU per GET 0.16-0.20 s against 0.11-0.12 s.
 * Smaller (256-512 KiB) costs more CPU still, for nothing (docs/s3-webdav.md).
 */
const GET_CHUNK_BYTES = 1 << 20

/** An HTTP answer thrown from deep inside a handler. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message = http.STATUS_CODES[status] ?? 'error',
  ) {
    super(message)
  }
}

function statusForError(error: unknown): number {
  if (error instanceof HttpError) return error.status
  if (error instanceof NotFoundError) return error.kind === 'dir' ? 409 : 404
  if (error instanceof ConflictError) {
    if (error.reason === 'no-space') return 507
    if (error.reason === 'exists') return 412
    return 409
  }

  if (error instanceof UsageError) return 400
  if (error instanceof AuthError) return 403
  if (error instanceof TemporaryError) return 503
  return 500
}

function etagOf(entry: Entry): string {
  const basis = entry.sha256 ?? entry.md5 ?? `${entry.size}-${entry.modified}`
  return `"${createHash('sha1').update(`${entry.path}\0${basis}`).digest('hex').slice(0, 24)}"`
}

/** `If` header (RFC 4918 §10.4): lists of conditions, each list for a resource (tagged) or the request URI. */
interface IfList {
  resource?: string
  conditions: Array<{not: boolean; token?: string; etag?: string}>
}

function parseIf(header: string, toPath: (href: string) => string): IfList[] {
  const lists: IfList[] = []
  let resource: string | undefined
  let i = 0
  const s = header
  const fail = () => new HttpError(400, 'malformed If header')
  while (i < s.length) {
    const c = s[i]
    if (/\s/.test(c)) {
      i++
    } else if (c === '<') {
      const end = s.indexOf('>', i)
      if (end < 0) throw fail()
      resource = toPath(s.slice(i + 1, end))
      i = end + 1
    } else if (c === '(') {
      const list: IfList = {resource, conditions: []}
      i++
      for (;;) {
        while (i < s.length && /\s/.test(s[i])) i++
        if (i >= s.length) throw fail()
        if (s[i] === ')') {
          i++
          break
        }

        let not = false
        if (/^not\b/i.test(s.slice(i, i + 4))) {
          not = true
          i += 3
          while (i < s.length && /\s/.test(s[i])) i++
        }

        if (s[i] === '<') {
          const end = s.indexOf('>', i)
          if (end < 0) throw fail()
          list.conditions.push({not, token: s.slice(i + 1, end)})
          i = end + 1
        } else if (s[i] === '[') {
          const end = s.indexOf(']', i)
          if (end < 0) throw fail()
          list.conditions.push({not, etag: s.slice(i + 1, end).trim()})
          i = end + 1
        } else {
          throw fail()
        }
      }

      if (list.conditions.length === 0) throw fail()
      lists.push(list)
    } else {
      throw fail()
    }
  }

  return lists
}

/**
 * A WebDAV class 1 and 2 server (RFC 4918) over any StorageAdapter:
 * PROPFIND/PROPPATCH with dead properties in a sidecar store, MKCOL,
 * GET/HEAD with Range, streamed PUT, DELETE, COPY/MOVE with Depth and
 * Overwrite, LOCK/UNLOCK with If headers, timeouts, shared and exclusive.
 */
export class WebDavServer {
  private server?: http.Server
  private readonly locks = new LockManager()
  private readonly props: PropStore
  private readonly auth?: Buffer

  constructor(private readonly options: WebDavServerOptions) {
    this.props = new PropStore(options.propsFile)
    if (options.user !== undefined && options.pass !== undefined) this.auth = Buffer.from(`${options.user}:${options.pass}`)
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | null
    if (!address) return ''
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    return `http://${host}:${address.port}/`
  }

  async start(): Promise<void> {
    await this.props.load()
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => this.fail(res, error))
    })
    server.keepAliveTimeout = 30_000
    server.requestTimeout = 0
    // Garbage on the socket: answer 400 where we can, never crash.
    server.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      else socket.destroy()
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  }

  async stop(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = undefined
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeAllConnections()
    await closed
  }

  private fail(res: ServerResponse, error: unknown): void {
    const status = statusForError(error)
    if (status >= 500) this.options.log?.(`error: ${error instanceof Error ? error.message : String(error)}`)
    if (res.headersSent) {
      res.destroy()
      return
    }

    const text = error instanceof DiskError ? error.line : error instanceof Error ? error.message : String(error)
    res.writeHead(status, {'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text + '\n')})
    res.end(text + '\n')
  }

  /** The backend path of a request URI or a Destination URL; 400 when it cannot be one. */
  private toPath(href: string): string {
    let pathname = href
    if (/^[a-z][a-z0-9+.-]*:/i.test(href)) {
      try {
        pathname = new URL(href).pathname
      } catch {
        throw new HttpError(400, 'bad URL')
      }
    }

    pathname = pathname.split('?')[0].split('#')[0]
    let decoded: string
    try {
      decoded = decodeURIComponent(pathname)
    } catch {
      throw new HttpError(400, 'bad percent-encoding')
    }

    try {
      return normalizePath(decoded.startsWith('/') ? decoded : `/${decoded}`)
    } catch {
      throw new HttpError(400, 'bad path')
    }
  }

  private hrefOf(path: string, dir: boolean): string {
    const encoded = path
      .split('/')
      .map((part) => encodeURIComponent(part))
      .join('/')
    return dir && path !== '/' ? `${encoded}/` : encoded
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.auth) return true
    const match = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '')
    if (!match) return false
    const given = Buffer.from(match[1], 'base64')
    return given.length === this.auth.length && timingSafeEqual(given, this.auth)
  }

  private async body(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > MAX_BODY) throw new HttpError(413)
      chunks.push(chunk as Buffer)
    }

    return Buffer.concat(chunks).toString('utf8')
  }

  private async xmlBody(req: IncomingMessage): Promise<XmlElement | undefined> {
    const text = await this.body(req)
    if (text.trim() === '') return undefined
    try {
      return parseXml(text)
    } catch (error) {
      if (error instanceof XmlError) throw new HttpError(400, error.message)
      throw error
    }
  }

  private async statOrUndefined(path: string): Promise<Entry | undefined> {
    try {
      return await this.options.adapter.stat(path)
    } catch (error) {
      if (error instanceof NotFoundError) return undefined
      throw error
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('DAV', '1, 2')
    if (!this.authorized(req)) {
      req.resume()
      res.writeHead(401, {'WWW-Authenticate': 'Basic realm="disk-client", charset="UTF-8"', 'Content-Length': 0})
      res.end()
      return
    }

    const path = this.toPath(req.url ?? '/')
    const method = (req.method ?? '').toUpperCase()
    switch (method) {
      case 'OPTIONS':
        req.resume()
        res.writeHead(200, {
          Allow: 'OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK',
          'MS-Author-Via': 'DAV',
          'Content-Length': 0,
        })
        res.end()
        return
      case 'GET':
      case 'HEAD':
        return this.get(req, res, path, method === 'HEAD')
      case 'PUT':
        return this.put(req, res, path)
      case 'DELETE':
        return this.delete(req, res, path)
      case 'MKCOL':
        return this.mkcol(req, res, path)
      case 'COPY':
      case 'MOVE':
        return this.copyMove(req, res, path, method)
      case 'PROPFIND':
        return this.propfind(req, res, path)
      case 'PROPPATCH':
        return this.proppatch(req, res, path)
      case 'LOCK':
        return this.lock(req, res, path)
      case 'UNLOCK':
        return this.unlock(req, res, path)
      default:
        req.resume()
        res.writeHead(405, {'Content-Length': 0})
        res.end()
    }
  }

  // --- preconditions: If header and locks ---

  /**
   * Evaluates the If header against the request URI (untagged lists) and
   * the tagged resources, and returns the lock tokens it submits.
   * A false If header is 412.
   */
  private async checkIf(req: IncomingMessage, path: string): Promise<Set<string>> {
    const header = req.headers.if
    const submitted = new Set<string>()
    if (!header) return submitted
    const lists = parseIf(String(header), (href) => this.toPath(href))
    let anyTrue = false
    for (const list of lists) {
      const target = list.resource ?? path
      let entry: Entry | undefined | null = null
      let ok = true
      for (const condition of list.conditions) {
        let result: boolean
        if (condition.token !== undefined) {
          submitted.add(condition.token)
          const lock = this.locks.get(condition.token)
          result = Boolean(lock && (lock.root === target || (lock.depth === 'infinity' && isWithin(target, lock.root))))
        } else {
          if (entry === null) entry = await this.statOrUndefined(target)
          result = Boolean(entry && condition.etag === etagOf(entry))
        }

        if (condition.not) result = !result
        if (!result) ok = false
      }

      if (ok) anyTrue = true
    }

    if (!anyTrue) throw new HttpError(412)
    return submitted
  }

  /** 423 unless every lock on `path` (and, for `deep`, below it) has its token submitted. */
  private assertUnlocked(path: string, submitted: Set<string>, deep: boolean): void {
    const locks = deep ? [...this.locks.covering(path), ...this.locks.within(path)] : this.locks.covering(path)
    for (const lock of locks) {
      if (!submitted.has(lock.token)) throw new HttpError(423)
    }
  }

  /** Creating or removing `path` changes its parent's membership: a depth-infinity lock on the parent counts. */
  private assertParentUnlocked(path: string, submitted: Set<string>): void {
    if (path === '/') return
    for (const lock of this.locks.covering(parentOf(path))) {
      if (lock.depth === 'infinity' || lock.root === parentOf(path)) {
        if (lock.depth === 'infinity' && !submitted.has(lock.token)) throw new HttpError(423)
      }
    }
  }

  // --- methods ---

  private async get(req: IncomingMessage, res: ServerResponse, path: string, head: boolean): Promise<void> {
    req.resume()
    const entry = await this.options.adapter.stat(path)
    if (entry.type === 'dir') {
      const names: string[] = []
      for await (const item of this.options.adapter.list(path)) names.push(item.name + (item.type === 'dir' ? '/' : ''))
      const text = names.map((n) => `<a href="${escapeXml(encodeURIComponent(n.replace(/\/$/, '')))}${n.endsWith('/') ? '/' : ''}">${escapeXml(n)}</a>`).join('<br>\n') + '\n'
      res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(text)})
      res.end(head ? undefined : text)
      return
    }

    const size = entry.size ?? 0
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/octet-stream',
      ETag: etagOf(entry),
      'Accept-Ranges': 'bytes',
    }
    if (entry.modified) headers['Last-Modified'] = new Date(entry.modified).toUTCString()
    let start = 0
    let end = size - 1
    let status = 200
    const range = req.headers.range
    const match = range ? /^bytes=(\d*)-(\d*)$/.exec(range.trim()) : null
    if (match && (match[1] !== '' || match[2] !== '')) {
      if (match[1] === '') {
        start = Math.max(0, size - Number(match[2]))
      } else {
        start = Number(match[1])
        if (match[2] !== '') end = Math.min(end, Number(match[2]))
      }

      if (start >= size || start > end) {
        res.writeHead(416, {'Content-Range': `bytes */${size}`, 'Content-Length': 0})
        res.end()
        return
      }

      status = 206
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`
    }

    headers['Content-Length'] = size === 0 ? 0 : end - start + 1
    if (head) {
      res.writeHead(status, headers)
      res.end()
      return
    }

    const adapter = this.options.adapter
    // A backend with ranged reads reads only the bytes asked for; the others are read from the start and cut below.
    const ranged = status === 206 && adapter.ranged === true
    // A whole file's chunks go back to the source once the socket has sent
    // them (recycle.ts), so the source may read into reused buffers: a GET
    // then costs the source's window, not a file's worth of garbage. In
    // GET_CHUNK_BYTES: the same few buffers go round while still in cache.
    const whole = status === 200
    const source = await adapter.openRead(path, ranged ? {entry, range: {offset: start, count: end - start + 1}} : {entry, recycled: whole, chunkBytes: GET_CHUNK_BYTES})
    res.writeHead(status, headers)
    // A local file on a plain TCP socket: a pool thread reads and sends it, as Apache's workers do (base/send-file.ts).
    const region = whole || ranged ? fileRegionOf(source) : undefined
    if (region && canSendFile(res.socket)) {
      res.flushHeaders()
      try {
        await sendFile(res.socket!, region)
      } catch (error) {
        // Headers are out: nothing to answer but a cut connection (the client sees the body end short).
        res.destroy()
        if (!['EPIPE', 'ECONNRESET', 'ECANCELED'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error
        return
      } finally {
        source.destroy()
      }

      res.end()
      return
    }

    if (whole || ranged) {
      await pipeline(source, whole ? recycleWhenSent(res) : res).catch((error: unknown) => {
        // The client hung up before the end: nothing to answer, nothing to log.
        if ((error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE' || !res.destroyed) throw error
      })
      return
    }

    // No ranged reads in this backend: skip to `start` and stop after `end`.
    let offset = 0
    const slice = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        const from = Math.max(0, start - offset)
        const to = Math.min(chunk.length, end + 1 - offset)
        offset += chunk.length
        if (to > from) this.push(chunk.subarray(from, to))
        if (offset > end) {
          this.push(null)
          source.destroy()
        }

        callback()
      },
    })
    await pipeline(source, slice, res).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw error
    })
  }

  private async put(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (path === '/') throw new HttpError(405)
    const submitted = await this.checkIf(req, path)
    this.assertUnlocked(path, submitted, false)
    const existing = await this.statOrUndefined(path)
    if (existing?.type === 'dir') throw new HttpError(405)
    if (!existing) this.assertParentUnlocked(path, submitted)
    const parent = await this.statOrUndefined(parentOf(path))
    if (!parent || parent.type !== 'dir') throw new HttpError(409)
    const length = Number(req.headers['content-length'])
    await this.options.adapter.write(path, req, {overwrite: true, size: Number.isFinite(length) ? length : undefined})
    res.writeHead(existing ? 204 : 201, {'Content-Length': 0})
    res.end()
  }

  private async delete(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    req.resume()
    if (path === '/') throw new HttpError(403)
    if (/#/.test(req.url ?? '')) throw new HttpError(400)
    const submitted = await this.checkIf(req, path)
    const entry = await this.options.adapter.stat(path)
    this.assertUnlocked(path, submitted, true)
    this.assertParentUnlocked(path, submitted)
    await this.options.adapter.remove(path, {recursive: entry.type === 'dir', permanently: true})
    this.locks.removeWithin(path)
    await this.props.remove(path)
    res.writeHead(204, {'Content-Length': 0})
    res.end()
  }

  private async mkcol(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const body = await this.body(req)
    if (body.length > 0) throw new HttpError(415)
    const submitted = await this.checkIf(req, path)
    if (await this.statOrUndefined(path)) throw new HttpError(405)
    this.assertParentUnlocked(path, submitted)
    try {
      await this.options.adapter.mkdir(path)
    } catch (error) {
      if (error instanceof NotFoundError) throw new HttpError(409)
      throw error
    }

    res.writeHead(201, {'Content-Length': 0})
    res.end()
  }

  private async copyMove(req: IncomingMessage, res: ServerResponse, src: string, method: 'COPY' | 'MOVE'): Promise<void> {
    req.resume()
    const destinationHeader = req.headers.destination
    if (!destinationHeader) throw new HttpError(400, 'no Destination header')
    const dst = this.toPath(String(destinationHeader))
    const overwrite = (req.headers.overwrite ?? 'T').toString().toUpperCase() !== 'F'
    const depthHeader = (req.headers.depth ?? 'infinity').toString().toLowerCase()
    if (method === 'MOVE' && depthHeader !== 'infinity') throw new HttpError(400, 'MOVE needs Depth: infinity')
    if (depthHeader !== '0' && depthHeader !== 'infinity') throw new HttpError(400, 'bad Depth')
    if (src === dst) throw new HttpError(403, 'source and destination are the same')
    if (src === '/' || isWithin(dst, src) || isWithin(src, dst)) throw new HttpError(method === 'MOVE' || isWithin(dst, src) ? 403 : 409)
    const submitted = await this.checkIf(req, src)
    const entry = await this.options.adapter.stat(src)
    if (method === 'MOVE') {
      this.assertUnlocked(src, submitted, true)
      this.assertParentUnlocked(src, submitted)
    }

    const parent = await this.statOrUndefined(parentOf(dst))
    if (!parent || parent.type !== 'dir') throw new HttpError(409)
    const existing = await this.statOrUndefined(dst)
    if (existing && !overwrite) throw new HttpError(412)
    this.assertUnlocked(dst, submitted, true)
    if (!existing) this.assertParentUnlocked(dst, submitted)
    if (existing) {
      await this.options.adapter.remove(dst, {recursive: existing.type === 'dir', permanently: true})
      this.locks.removeWithin(dst)
      await this.props.remove(dst)
    }

    const adapter = this.options.adapter
    if (method === 'MOVE') {
      if (adapter.move) await adapter.move(src, dst)
      else await this.copyTree(entry, dst, true)
      if (!adapter.move) await adapter.remove(src, {recursive: entry.type === 'dir', permanently: true})
      this.locks.removeWithin(src)
      await this.props.copy(src, dst, true)
    } else if (entry.type === 'dir' && depthHeader === '0') {
      await adapter.mkdir(dst)
      await this.props.update(dst, Object.entries(this.props.get(src)))
    } else {
      if (adapter.copy) await adapter.copy(src, dst)
      else await this.copyTree(entry, dst, true)
      await this.props.copy(src, dst)
    }

    res.writeHead(existing ? 204 : 201, {'Content-Length': 0})
    res.end()
  }

  /** COPY for a backend without server-side copy: read and write, file by file. */
  private async copyTree(entry: Entry, dst: string, deep: boolean): Promise<void> {
    const adapter = this.options.adapter
    if (entry.type === 'file') {
      await adapter.write(dst, await adapter.openRead(entry.path, {entry}), {size: entry.size ?? undefined})
      return
    }

    await adapter.mkdir(dst)
    if (!deep) return
    for await (const item of adapter.list(entry.path)) await this.copyTree(item, joinPath(dst, item.name), true)
  }

  // --- properties ---

  private liveProps(entry: Entry): Record<string, string> {
    const props: Record<string, string> = {
      [clark(DAV, 'resourcetype')]: entry.type === 'dir' ? '<D:collection/>' : '',
      [clark(DAV, 'displayname')]: escapeXml(entry.name),
      [clark(DAV, 'supportedlock')]:
        '<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>' +
        '<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>',
      [clark(DAV, 'lockdiscovery')]: this.locks.covering(entry.path).map((lock) => this.activeLock(lock)).join(''),
    }
    if (entry.modified) {
      props[clark(DAV, 'getlastmodified')] = new Date(entry.modified).toUTCString()
      props[clark(DAV, 'creationdate')] = new Date(entry.modified).toISOString()
    }

    if (entry.type === 'file') {
      props[clark(DAV, 'getcontentlength')] = String(entry.size ?? 0)
      props[clark(DAV, 'getcontenttype')] = 'application/octet-stream'
      props[clark(DAV, 'getetag')] = etagOf(entry)
    }

    return props
  }

  private activeLock(lock: Lock): string {
    return (
      `<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:${lock.scope}/></D:lockscope>` +
      `<D:depth>${lock.depth === '0' ? '0' : 'infinity'}</D:depth>` +
      (lock.owner ? `<D:owner>${lock.owner}</D:owner>` : '') +
      `<D:timeout>${lock.timeoutSeconds === null ? 'Infinite' : `Second-${lock.timeoutSeconds}`}</D:timeout>` +
      `<D:locktoken><D:href>${escapeXml(lock.token)}</D:href></D:locktoken>` +
      `<D:lockroot><D:href>${escapeXml(this.hrefOf(lock.root, false))}</D:href></D:lockroot></D:activelock>`
    )
  }

  private async propfind(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const body = await this.xmlBody(req)
    let mode: 'allprop' | 'propname' | 'prop' = 'allprop'
    let wanted: string[] = []
    if (body) {
      if (body.ns !== DAV || body.local !== 'propfind') throw new HttpError(400, 'expected DAV:propfind')
      const prop = child(body, DAV, 'prop')
      if (prop) {
        mode = 'prop'
        wanted = elements(prop).map((e) => clark(e.ns, e.local))
      } else if (child(body, DAV, 'propname')) {
        mode = 'propname'
      } else if (!child(body, DAV, 'allprop')) {
        throw new HttpError(400, 'expected prop, propname or allprop')
      }
    }

    const depthHeader = (req.headers.depth ?? 'infinity').toString().toLowerCase()
    if (!['0', '1', 'infinity'].includes(depthHeader)) throw new HttpError(400, 'bad Depth')
    const root = await this.options.adapter.stat(path)
    res.writeHead(207, {'Content-Type': 'application/xml; charset=utf-8'})
    res.write('<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">')
    const visit = async (entry: Entry, depth: number): Promise<void> => {
      res.write(this.response(entry, mode, wanted))
      if (entry.type !== 'dir' || depth === 0) return
      const children: Entry[] = []
      for await (const item of this.options.adapter.list(entry.path)) children.push(item)
      for (const item of children) await visit(item, depth - 1)
    }

    await visit(root, depthHeader === '0' ? 0 : depthHeader === '1' ? 1 : Number.POSITIVE_INFINITY)
    res.end('</D:multistatus>\n')
  }

  private response(entry: Entry, mode: 'allprop' | 'propname' | 'prop', wanted: string[]): string {
    const all = {...this.liveProps(entry), ...this.props.get(entry.path)}
    let found = ''
    let missing = ''
    if (mode === 'prop') {
      for (const key of wanted) {
        if (Object.hasOwn(all, key)) found += propertyXml(key, all[key])
        else missing += propertyXml(key, undefined)
      }
    } else {
      for (const [key, value] of Object.entries(all)) found += propertyXml(key, mode === 'propname' ? undefined : value)
    }

    let out = `<D:response><D:href>${escapeXml(this.hrefOf(entry.path, entry.type === 'dir'))}</D:href>`
    if (found || mode !== 'prop') out += `<D:propstat><D:prop>${found}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>`
    if (missing) out += `<D:propstat><D:prop>${missing}</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>`
    return out + '</D:response>'
  }

  private async proppatch(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const body = await this.xmlBody(req)
    if (!body || body.ns !== DAV || body.local !== 'propertyupdate') throw new HttpError(400, 'expected DAV:propertyupdate')
    const submitted = await this.checkIf(req, path)
    const entry = await this.options.adapter.stat(path)
    this.assertUnlocked(path, submitted, false)
    const changes: Array<[string, string | undefined]> = []
    for (const op of elements(body, DAV)) {
      if (op.local !== 'set' && op.local !== 'remove') continue
      const prop = child(op, DAV, 'prop')
      if (!prop) throw new HttpError(400, 'set or remove without prop')
      for (const p of elements(prop)) changes.push([clark(p.ns, p.local), op.local === 'set' ? serialize(p.children) : undefined])
    }

    const forbidden = changes.filter(([key]) => key.startsWith('{DAV:}') && LIVE.includes(key.slice(6)))
    const statuses = changes.map(([key]) => [key, forbidden.length === 0 ? 200 : forbidden.some(([k]) => k === key) ? 403 : 424] as const)
    if (forbidden.length === 0) await this.props.update(entry.path, changes)
    let out = `<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:"><D:response><D:href>${escapeXml(this.hrefOf(path, entry.type === 'dir'))}</D:href>`
    for (const status of [200, 403, 424]) {
      const keys = statuses.filter(([, s]) => s === status).map(([key]) => key)
      if (keys.length === 0) continue
      out += `<D:propstat><D:prop>${keys.map((key) => propertyXml(key, undefined)).join('')}</D:prop><D:status>HTTP/1.1 ${status} ${http.STATUS_CODES[status]}</D:status></D:propstat>`
    }

    out += '</D:response></D:multistatus>\n'
    res.writeHead(207, {'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(out)})
    res.end(out)
  }

  // --- locks ---

  private async lock(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const body = await this.xmlBody(req)
    const timeout = parseTimeout(req.headers.timeout?.toString())
    if (!body) {
      // A refresh: the If header names the lock.
      const submitted = await this.checkIf(req, path)
      const lock = [...submitted].map((token) => this.locks.get(token)).find((l) => l && (l.root === path || (l.depth === 'infinity' && isWithin(path, l.root))))
      if (!lock) throw new HttpError(412)
      this.locks.refresh(lock, timeout)
      this.sendLock(res, 200, lock, false)
      return
    }

    if (body.ns !== DAV || body.local !== 'lockinfo') throw new HttpError(400, 'expected DAV:lockinfo')
    const scopeElement = child(body, DAV, 'lockscope')
    const scope = scopeElement && child(scopeElement, DAV, 'shared') ? 'shared' : scopeElement && child(scopeElement, DAV, 'exclusive') ? 'exclusive' : undefined
    if (!scope) throw new HttpError(400, 'no lockscope')
    const ownerElement = child(body, DAV, 'owner')
    const depthHeader = (req.headers.depth ?? 'infinity').toString().toLowerCase()
    if (depthHeader !== '0' && depthHeader !== 'infinity') throw new HttpError(400, 'bad Depth')
    const submitted = await this.checkIf(req, path)
    if (this.locks.conflicts(path, scope, depthHeader).length > 0) throw new HttpError(423)
    let entry = await this.statOrUndefined(path)
    let created = false
    if (!entry) {
      // Locking an unmapped URL creates an empty file (RFC 4918 §7.3).
      this.assertParentUnlocked(path, submitted)
      const parent = await this.statOrUndefined(parentOf(path))
      if (!parent || parent.type !== 'dir') throw new HttpError(409)
      entry = await this.options.adapter.write(path, Readable.from([]), {size: 0})
      created = true
    }

    const lock = this.locks.create({
      root: path,
      scope,
      depth: entry.type === 'dir' ? depthHeader : '0',
      owner: ownerElement ? serialize(ownerElement.children) : '',
      timeoutSeconds: timeout,
    })
    this.sendLock(res, created ? 201 : 200, lock, true)
  }

  private sendLock(res: ServerResponse, status: number, lock: Lock, withToken: boolean): void {
    const out = `<?xml version="1.0" encoding="utf-8"?>\n<D:prop xmlns:D="DAV:"><D:lockdiscovery>${this.activeLock(lock)}</D:lockdiscovery></D:prop>\n`
    const headers: Record<string, string | number> = {'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(out)}
    if (withToken) headers['Lock-Token'] = `<${lock.token}>`
    res.writeHead(status, headers)
    res.end(out)
  }

  private async unlock(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    req.resume()
    const token = /^\s*<([^>]+)>\s*$/.exec(req.headers['lock-token']?.toString() ?? '')?.[1]
    if (!token) throw new HttpError(400, 'no Lock-Token header')
    const lock = this.locks.get(token)
    if (!lock || !(lock.root === path || (lock.depth === 'infinity' && isWithin(path, lock.root)))) throw new HttpError(409)
    this.locks.remove(token)
    res.writeHead(204, {'Content-Length': 0})
    res.end()
  }
}

