// A stateful fake of the Yandex.Disk REST API for tests, built from persistent
// nock interceptors whose replies act on an in-memory tree. It has the API
// host (OAuth required), a separate upload host, a download host that
// redirects to a storage host, and 202 + /operations for directory copy, move
// and delete (and, when asked, for uploads), like the real service. Nothing reaches the network.
import {createHash, randomBytes} from 'node:crypto'
import nock from 'nock'

import {isWithin, parentOf} from '../../../src/backends/remote-path.js'

type Reply = [number, unknown?, Record<string, string>?]
type Host = 'api' | 'upload' | 'download' | 'storage'

export interface FakeDiskOptions {
  apiOrigin?: string
  apiPath?: string
  uploadOrigin?: string
  downloadOrigin?: string
  storageOrigin?: string
  /** The only token the API accepts. */
  token?: string
  /** Quota in bytes. */
  totalSpace?: number
  /** Copy, move and delete of non-empty directories answer 202 + an operation (default true). */
  asyncDirectories?: boolean
  /** How many polls an operation answers `in-progress` before it ends (default 1). */
  operationPolls?: number
  /**
   * The upload href answers 202 (received, still being processed) and the file
   * appears only once its operation (`/operations/{operation_id}`) ends, as
   * the real service does with large files (default false).
   */
  asyncUploads?: boolean
}

/** A one-off (or `times`-off) answer that replaces the fake's own, for fault injection. */
export interface Fault {
  host?: Host
  method?: string
  /** Prefix of the path below the API base (`/resources/upload`), or of the raw path on other hosts. */
  path?: string
  status: number
  body?: unknown
  headers?: Record<string, string>
  times?: number
}

export interface RecordedRequest {
  host: Host
  method: string
  /** The raw path and query as sent, e.g. `/v1/disk/resources?path=disk%3A%2Fa%2Bb`. */
  uri: string
  authorization?: string
}

interface Node {
  type: 'dir' | 'file'
  content?: Buffer
  created: string
  modified: string
  md5?: string
  sha256?: string
}

interface PendingOperation {
  pollsLeft: number
  fail: boolean
  apply: () => void
  status: 'in-progress' | 'success' | 'failed'
}

const JSON_HEADERS = {'Content-Type': 'application/json; charset=utf-8'}
const TEXT_HEADERS = {'Content-Type': 'text/plain'}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, '+00:00')
}

function apiError(status: number, error: string, description: string): Reply {
  return [status, {error, message: description, description}, JSON_HEADERS]
}

/** nock hands a binary body over as hex; the Content-Length tells which form it is. */
function bodyBytes(body: unknown, contentLength: string | undefined): Buffer {
  if (Buffer.isBuffer(body)) return body
  const text = typeof body === 'string' ? body : body === undefined ? '' : JSON.stringify(body)
  const utf8 = Buffer.from(text, 'utf8')
  const declared = contentLength === undefined ? undefined : Number(contentLength)
  const looksHex = text.length % 2 === 0 && /^[0-9a-f]*$/.test(text)
  if (looksHex && (declared === text.length / 2 || (declared === undefined && !isUtf8(Buffer.from(text, 'hex'))))) {
    return Buffer.from(text, 'hex')
  }

  return utf8
}

function isUtf8(buffer: Buffer): boolean {
  return Buffer.from(buffer.toString('utf8'), 'utf8').equals(buffer)
}

export class FakeYandexDisk {
  readonly apiOrigin: string
  readonly apiPath: string
  readonly uploadOrigin: string
  readonly downloadOrigin: string
  readonly storageOrigin: string
  readonly token: string
  totalSpace: number
  asyncDirectories: boolean
  operationPolls: number
  asyncUploads: boolean
  /** Operations created while this is set end `failed`, changing nothing. */
  failOperations = false
  /** The next upload is stored with its first byte flipped, as a corrupting store would. */
  corruptNextUpload = false
  readonly tree = new Map<string, Node>()
  readonly requests: RecordedRequest[] = []
  /** Requests to the upload, download or storage hosts that carried an Authorization header. */
  readonly tokenLeaks: RecordedRequest[] = []
  trashSize = 0
  private readonly faults: Fault[] = []
  private readonly operations = new Map<string, PendingOperation>()
  private readonly uploads = new Map<string, {path: string; overwrite: boolean}>()
  private readonly downloads = new Map<string, string>()
  private readonly scopes: nock.Scope[] = []
  private readonly interceptors: nock.Interceptor[] = []

  constructor(options: FakeDiskOptions = {}) {
    this.apiOrigin = options.apiOrigin ?? 'https://cloud-api.yandex.net'
    this.apiPath = options.apiPath ?? '/v1/disk'
    this.uploadOrigin = options.uploadOrigin ?? 'https://uploader42vla.disk.yandex.net:443'
    this.downloadOrigin = options.downloadOrigin ?? 'https://downloader.disk.yandex.ru'
    this.storageOrigin = options.storageOrigin ?? 'https://s123sas.storage.yandex.net'
    this.token = options.token ?? 'fake-oauth-token'
    this.totalSpace = options.totalSpace ?? 10 * 2 ** 30
    this.asyncDirectories = options.asyncDirectories ?? true
    this.operationPolls = options.operationPolls ?? 1
    this.asyncUploads = options.asyncUploads ?? false
    this.tree.set('/', {type: 'dir', created: now(), modified: now()})
  }

  /** The API base to give the adapter. */
  get apiUrl(): string {
    return this.apiOrigin + this.apiPath
  }

  /** Installs the interceptors (persistent and optional, so `scope.done()` only checks other mocks). */
  start(): this {
    const hosts: Array<[Host, string]> = [
      ['api', this.apiOrigin],
      ['upload', this.uploadOrigin],
      ['download', this.downloadOrigin],
      ['storage', this.storageOrigin],
    ]
    for (const [host, origin] of hosts) {
      const scope = nock(origin).persist()
      this.scopes.push(scope)
      for (const method of ['GET', 'PUT', 'POST', 'DELETE']) {
        const fake = this
        const interceptor = scope.intercept(() => true, method).optionally()
        interceptor.reply(function (uri: string, body: unknown) {
          const headers = this.req.headers as Record<string, string | undefined>
          return fake.handle(host, method, uri, body, headers) as unknown as nock.ReplyFnResult
        })
        this.interceptors.push(interceptor)
      }
    }

    return this
  }

  /** Removes this fake's interceptors (and nothing else). */
  stop(): void {
    for (const interceptor of this.interceptors) nock.removeInterceptor(interceptor)
    this.interceptors.length = 0
    this.scopes.length = 0
  }

  /** Throws if an injected fault was never used or a token reached a host other than the API. */
  done(): void {
    if (this.faults.length > 0) throw new Error(`unused faults: ${JSON.stringify(this.faults)}`)
    if (this.tokenLeaks.length > 0) throw new Error(`token sent to: ${JSON.stringify(this.tokenLeaks)}`)
  }

  inject(fault: Fault): this {
    this.faults.push({times: 1, ...fault})
    return this
  }

  addDir(path: string): this {
    this.tree.set(path, {type: 'dir', created: now(), modified: now()})
    return this
  }

  addFile(path: string, content: string | Buffer): this {
    this.tree.set(path, this.fileNode(Buffer.from(content)))
    return this
  }

  read(path: string): Buffer | undefined {
    return this.tree.get(path)?.content
  }

  get usedSpace(): number {
    let used = this.trashSize
    for (const node of this.tree.values()) used += node.content?.length ?? 0
    return used
  }

  private fileNode(content: Buffer): Node {
    return {
      type: 'file',
      content,
      created: now(),
      modified: now(),
      md5: createHash('md5').update(content).digest('hex'),
      sha256: createHash('sha256').update(content).digest('hex'),
    }
  }

  private handle(host: Host, method: string, uri: string, body: unknown, headers: Record<string, string | undefined>): Reply {
    const url = new URL(uri, 'https://fake.invalid')
    const record: RecordedRequest = {host, method, uri, authorization: headers.authorization}
    this.requests.push(record)
    if (host !== 'api' && headers.authorization !== undefined) this.tokenLeaks.push(record)
    const route = host === 'api' ? url.pathname.slice(this.apiPath.length) || '/' : url.pathname
    const fault = this.takeFault(host, method, route)
    if (fault) return fault
    switch (host) {
      case 'api': {
        if (headers.authorization !== `OAuth ${this.token}`) {
          return apiError(401, 'UnauthorizedError', 'Unauthorized')
        }

        return this.api(method, route, url.searchParams)
      }

      case 'upload': {
        return this.receiveUpload(method, route, body, headers['content-length'])
      }

      case 'download': {
        return this.redirectDownload(route, url.search)
      }

      case 'storage': {
        return this.serveContent(route)
      }
    }
  }

  private takeFault(host: Host, method: string, route: string): Reply | undefined {
    const index = this.faults.findIndex(
      (f) => (f.host ?? 'api') === host && (!f.method || f.method === method) && (!f.path || route.startsWith(f.path)),
    )
    if (index < 0) return undefined
    const fault = this.faults[index]
    fault.times = (fault.times ?? 1) - 1
    if (fault.times <= 0) this.faults.splice(index, 1)
    const isJson = typeof fault.body === 'object' && fault.body !== null
    return [fault.status, fault.body ?? '', {...(isJson ? JSON_HEADERS : TEXT_HEADERS), ...fault.headers}]
  }

  private api(method: string, route: string, query: URLSearchParams): Reply {
    const key = `${method} ${route}`
    if (key === 'GET /' || key === 'GET ') {
      return [200, {total_space: this.totalSpace, used_space: this.usedSpace, trash_size: this.trashSize, is_paid: false}, JSON_HEADERS]
    }

    if (route.startsWith('/operations/') && method === 'GET') return this.pollOperation(route.slice('/operations/'.length))
    const path = this.pathParam(query.get('path'))
    if (path === undefined) return apiError(400, 'FieldValidationError', 'Error validating field "path": This field is required.')
    switch (key) {
      case 'GET /resources': {
        return this.meta(path, query)
      }

      case 'PUT /resources': {
        return this.mkdir(path)
      }

      case 'DELETE /resources': {
        return this.remove(path, query.get('permanently') === 'true')
      }

      case 'POST /resources/copy':
      case 'POST /resources/move': {
        return this.transfer(route.endsWith('move') ? 'move' : 'copy', query.get('from'), path, query.get('overwrite') === 'true')
      }

      case 'GET /resources/upload': {
        return this.uploadLink(path, query.get('overwrite') === 'true')
      }

      case 'GET /resources/download': {
        return this.downloadLink(path)
      }

      default: {
        return apiError(404, 'NotFoundError', 'Resource not found.')
      }
    }
  }

  /** `disk:/a/b/` → `/a/b`; undefined if absent. */
  private pathParam(value: string | null): string | undefined {
    if (value === null) return undefined
    const path = value.replace(/^disk:/, '').replace(/\/+$/, '')
    return path.startsWith('/') ? path : `/${path}`
  }

  private resource(path: string): Record<string, unknown> {
    const node = this.tree.get(path)!
    const resource: Record<string, unknown> = {
      name: path === '/' ? 'disk' : path.slice(path.lastIndexOf('/') + 1),
      path: `disk:${path}`,
      type: node.type,
      created: node.created,
      modified: node.modified,
      resource_id: `42:${createHash('sha1').update(path).digest('hex')}`,
    }
    if (node.type === 'file') {
      Object.assign(resource, {size: node.content!.length, md5: node.md5, sha256: node.sha256, mime_type: 'application/octet-stream'})
    }

    return resource
  }

  private children(path: string): string[] {
    const prefix = path === '/' ? '/' : `${path}/`
    return [...this.tree.keys()]
      .filter((p) => p !== path && p.startsWith(prefix) && !p.slice(prefix.length).includes('/'))
      .sort()
  }

  private subtree(path: string): string[] {
    return [...this.tree.keys()].filter((p) => isWithin(p, path))
  }

  private meta(path: string, query: URLSearchParams): Reply {
    const node = this.tree.get(path)
    if (!node) return apiError(404, 'DiskNotFoundError', 'Resource not found.')
    const resource = this.resource(path)
    if (node.type === 'dir') {
      const limit = Number(query.get('limit') ?? 20)
      const offset = Number(query.get('offset') ?? 0)
      const names = this.children(path)
      resource._embedded = {
        items: names.slice(offset, offset + limit).map((p) => this.resource(p)),
        limit,
        offset,
        total: names.length,
        path: `disk:${path}`,
        sort: '',
      }
    }

    const fields = query.get('fields')
    if (fields) {
      const wanted = new Set(fields.split(',').map((f) => f.split('.')[0]))
      for (const key of Object.keys(resource)) if (!wanted.has(key)) delete resource[key]
    }

    return [200, resource, JSON_HEADERS]
  }

  private link(path: string): Record<string, unknown> {
    return {href: `${this.apiUrl}/resources?path=${encodeURIComponent(`disk:${path}`)}`, method: 'GET', templated: false}
  }

  private parentMissing(path: string): boolean {
    return this.tree.get(parentOf(path))?.type !== 'dir'
  }

  private mkdir(path: string): Reply {
    if (this.tree.has(path)) {
      return apiError(409, 'DiskPathPointsToExistentDirectoryError', `Specified path "disk:${path}" points to existent directory.`)
    }

    if (this.parentMissing(path)) return apiError(409, 'DiskPathDoesntExistsError', `Specified path "disk:${path}" doesn't exists.`)
    this.addDir(path)
    return [201, this.link(path), JSON_HEADERS]
  }

  /** Runs `apply` now (answering `direct`) or, for a non-empty directory, as a 202 operation. */
  private perhapsAsync(path: string, direct: Reply, apply: () => void): Reply {
    const async = this.asyncDirectories && this.tree.get(path)?.type === 'dir' && this.children(path).length > 0
    if (!async && !this.failOperations) {
      apply()
      return direct
    }

    const id = randomBytes(16).toString('hex')
    this.operations.set(id, {pollsLeft: this.operationPolls, fail: this.failOperations, apply, status: 'in-progress'})
    return [202, {href: `${this.apiUrl}/operations/${id}`, method: 'GET', templated: false}, JSON_HEADERS]
  }

  private pollOperation(id: string): Reply {
    const operation = this.operations.get(id)
    if (!operation) return apiError(404, 'NotFoundError', 'Operation not found.')
    if (operation.status === 'in-progress' && operation.pollsLeft-- <= 0) {
      if (operation.fail) {
        operation.status = 'failed'
      } else {
        operation.apply()
        operation.status = 'success'
      }
    }

    return [200, {status: operation.status}, JSON_HEADERS]
  }

  private remove(path: string, permanently: boolean): Reply {
    if (!this.tree.has(path)) return apiError(404, 'DiskNotFoundError', 'Resource not found.')
    return this.perhapsAsync(path, [204, ''], () => {
      for (const p of this.subtree(path)) {
        if (!permanently) this.trashSize += this.tree.get(p)?.content?.length ?? 0
        this.tree.delete(p)
      }
    })
  }

  private transfer(kind: 'copy' | 'move', fromParam: string | null, path: string, overwrite: boolean): Reply {
    const from = this.pathParam(fromParam)
    if (from === undefined) return apiError(400, 'FieldValidationError', 'Error validating field "from": This field is required.')
    if (!this.tree.has(from)) return apiError(404, 'DiskNotFoundError', 'Resource not found.')
    if (isWithin(path, from)) return apiError(409, 'DiskResourceAlreadyExistsError', 'Cannot copy or move a resource into itself.')
    if (this.tree.has(path) && !overwrite) {
      return apiError(409, 'DiskResourceAlreadyExistsError', `Resource "disk:${path}" already exists.`)
    }

    if (this.parentMissing(path)) return apiError(409, 'DiskPathDoesntExistsError', `Specified path "disk:${path}" doesn't exists.`)
    return this.perhapsAsync(from, [201, this.link(path), JSON_HEADERS], () => {
      for (const p of this.subtree(path)) this.tree.delete(p)
      for (const p of this.subtree(from)) {
        const target = path + p.slice(from.length)
        this.tree.set(target, {...this.tree.get(p)!})
        if (kind === 'move') this.tree.delete(p)
      }
    })
  }

  private uploadLink(path: string, overwrite: boolean): Reply {
    if (this.parentMissing(path)) return apiError(409, 'DiskPathDoesntExistsError', `Specified path "disk:${path}" doesn't exists.`)
    const existing = this.tree.get(path)
    if (existing?.type === 'dir') {
      return apiError(409, 'DiskPathPointsToExistentDirectoryError', `Specified path "disk:${path}" points to existent directory.`)
    }

    if (existing && !overwrite) return apiError(409, 'DiskResourceAlreadyExistsError', `Resource "disk:${path}" already exists.`)
    const id = randomBytes(16).toString('hex')
    this.uploads.set(id, {path, overwrite})
    return [200, {operation_id: id, href: `${this.uploadOrigin}/upload-target/${id}`, method: 'PUT', templated: false}, JSON_HEADERS]
  }

  private receiveUpload(method: string, route: string, body: unknown, contentLength: string | undefined): Reply {
    const id = route.replace(/^\/upload-target\//, '')
    const target = this.uploads.get(id)
    if (method !== 'PUT' || !target) return [404, 'Not Found', TEXT_HEADERS]
    this.uploads.delete(id)
    const content = bodyBytes(body, contentLength)
    if (this.usedSpace + content.length > this.totalSpace) return [507, 'Insufficient Storage', TEXT_HEADERS]
    if (this.tree.has(target.path) && !target.overwrite) return [409, 'Conflict', TEXT_HEADERS]
    const stored = Buffer.from(content)
    if (this.corruptNextUpload && stored.length > 0) {
      stored[0] ^= 0xff
      this.corruptNextUpload = false
    }

    const store = () => this.tree.set(target.path, this.fileNode(stored))
    if (!this.asyncUploads) {
      store()
      return [201, 'Created', TEXT_HEADERS]
    }

    // The upload link's operation_id names the operation that finishes storing it.
    this.operations.set(id, {pollsLeft: this.operationPolls, fail: this.failOperations, apply: store, status: 'in-progress'})
    return [202, 'Accepted', TEXT_HEADERS]
  }

  private downloadLink(path: string): Reply {
    if (!this.tree.has(path)) return apiError(404, 'DiskNotFoundError', 'Resource not found.')
    const id = randomBytes(16).toString('hex')
    this.downloads.set(id, path)
    const name = encodeURIComponent(path.slice(path.lastIndexOf('/') + 1))
    return [200, {href: `${this.downloadOrigin}/disk/${id}?filename=${name}&disposition=attachment`, method: 'GET', templated: false}, JSON_HEADERS]
  }

  private redirectDownload(route: string, search: string): Reply {
    const id = route.replace(/^\/disk\//, '')
    if (!this.downloads.has(id)) return [404, 'Not Found', TEXT_HEADERS]
    return [302, '', {Location: `${this.storageOrigin}/rdisk/${id}${search}`}]
  }

  private serveContent(route: string): Reply {
    const path = this.downloads.get(route.replace(/^\/rdisk\//, ''))
    const content = path === undefined ? undefined : this.tree.get(path)?.content
    if (!content) return [404, 'Not Found', TEXT_HEADERS]
    return [200, content, {'Content-Type': 'application/octet-stream', 'Content-Length': String(content.length)}]
  }
}
