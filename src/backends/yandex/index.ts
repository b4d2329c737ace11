import type {Readable} from 'node:stream'
import {pipeline} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'

import type {
  About,
  BackendFactory,
  Entry,
  HashName,
  Prepared,
  ReadOptions,
  RemoveOptions,
  StorageAdapter,
  TransferOptions,
  Trash,
  TrashItem,
  WriteOptions,
} from '../adapter.js'
import {
  AuthError,
  ConflictError,
  DiskError,
  IntegrityError,
  NotFoundError,
  OperationFailedError,
  TimeoutError,
  UsageError,
} from '../errors.js'
import {type Digests, HashingStream, verifyDigests} from '../hashing.js'
import {baseName, isWithin} from '../remote-path.js'
import type {DiskInfo, Link, Operation, Resource, TrashResource} from './api/types.js'
import {TOKEN_HINT, YandexHttp} from './http.js'

export const DEFAULT_API_URL = 'https://cloud-api.yandex.net/v1/disk'

/** Everything the Yandex backend can be told; defaults are applied in one place, the constructor. */
export interface YandexBackendOptions {
  /** OAuth token. Without one the constructor rejects with AuthError. */
  token?: string
  /** API base. Default `https://cloud-api.yandex.net/v1/disk`. */
  apiUrl?: string
  /** Attempts after the first for temporary failures. Default 5. */
  retries?: number
  /** First backoff delay in ms, doubling up to 8 s. Default 500. */
  retryBaseMs?: number
  /** Entries asked for per page when listing. Default 100. */
  pageSize?: number
  /** First wait between polls of an asynchronous operation, in ms; doubles each time. Default 250. */
  operationPollMs?: number
  /** Longest wait between polls, in ms. Default 4000. */
  operationPollMaxMs?: number
  /** How long a copy, move, delete or a 202-answered upload may stay in progress before TimeoutError, in ms. Default 30 min. */
  operationTimeoutMs?: number
  /** How long a link resolved ahead (prepareRead, prepareWrite) is trusted, in ms; older ones are resolved again. Default 5 min. */
  preparedMaxAgeMs?: number
  /** Socket inactivity limit in ms. Default 60 s. */
  timeoutMs?: number
  /** Diagnostic lines (retries). Default: none. */
  log?: (message: string) => void
}

/** `/a/b` → `disk:/a/b`, the form the API takes. */
export function toDiskPath(path: string): string {
  return `disk:${path}`
}

/** `disk:/a/b` → `/a/b`, the form users write. */
export function fromDiskPath(diskPath: string): string {
  const path = diskPath.replace(/^disk:/, '').replace(/\/+$/, '')
  return path.startsWith('/') ? path : `/${path}`
}

/** The fields `stat` asks for, so a folder's entries are not sent along. */
const STAT_FIELDS = 'name,path,type,size,created,modified,md5,sha256'

/** What the public `stat` asks for: the same, and for a folder its first page of entries with those fields. */
const STAT_PAGE_FIELDS = [
  STAT_FIELDS,
  ...STAT_FIELDS.split(',').map((field) => `_embedded.items.${field}`),
  '_embedded.total',
  '_embedded.limit',
  '_embedded.offset',
].join(',')

/** How long a folder's first page from `stat` may serve a `list` of it (a tree transfer lists right after its stat). */
const FIRST_PAGE_MAX_AGE_MS = 2000

/**
 * Yandex.Disk through its REST API (DESIGN.md §4): listings page through
 * `_embedded`, content streams to and from the hrefs the API hands out,
 * copy/move/delete follow 202 operations to their end, and every answer is
 * mapped to the typed errors of errors.ts.
 */
export class YandexBackend implements StorageAdapter {
  readonly name = 'yandex'
  readonly hashes: readonly HashName[] = ['md5', 'sha256']
  readonly ranged = true
  private readonly http: YandexHttp
  private readonly pageSize: number
  private readonly pollMs: number
  private readonly pollMaxMs: number
  private readonly operationTimeoutMs: number
  private readonly preparedMaxAgeMs: number
  private readonly log: (message: string) => void
  /**
   * The first page of the folder last statted, for one `list` of it that
   * follows at once: a tree transfer stats its source, then walks it, and
   * the stat already brought the page (one round trip fewer). Dropped when
   * older than FIRST_PAGE_MAX_AGE_MS or after any change made through this
   * backend.
   */
  private firstPage: {dir: string; page: Resource; at: number; changes: number} | undefined

  constructor(options: YandexBackendOptions) {
    if (!options.token) {
      throw new AuthError('no Yandex.Disk OAuth token', {hint: TOKEN_HINT})
    }

    this.http = new YandexHttp({
      apiUrl: options.apiUrl || DEFAULT_API_URL,
      token: options.token,
      retries: options.retries ?? 5,
      retryBaseMs: options.retryBaseMs ?? 500,
      timeoutMs: options.timeoutMs ?? 60_000,
      log: options.log ?? (() => {}),
    })
    this.pageSize = options.pageSize ?? 100
    this.pollMs = options.operationPollMs ?? 250
    this.pollMaxMs = options.operationPollMaxMs ?? 4000
    this.operationTimeoutMs = options.operationTimeoutMs ?? 30 * 60_000
    this.preparedMaxAgeMs = options.preparedMaxAgeMs ?? 5 * 60_000
    this.log = options.log ?? (() => {})
  }

  private toEntry(resource: Resource): Entry {
    const path = fromDiskPath(resource.path)
    const entry: Entry = {
      name: path === '/' ? '' : resource.name || baseName(path),
      path,
      type: resource.type === 'dir' ? 'dir' : 'file',
      size: resource.type === 'dir' ? null : (resource.size ?? 0),
      modified: resource.modified ?? null,
    }
    if (resource.md5) entry.md5 = resource.md5
    if (resource.sha256) entry.sha256 = resource.sha256
    return entry
  }

  private resource(path: string, context: string, params: Record<string, string | number> = {}): Promise<Resource> {
    return this.http
      .call<Resource>({method: 'GET', url: '/resources', params: {path: toDiskPath(path), ...params}, context})
      .then((response) => response.data)
  }

  private statAs(path: string, context: string): Promise<Entry> {
    return this.resource(path, context, {fields: STAT_FIELDS}).then((resource) => this.toEntry(resource))
  }

  async *list(dir: string): AsyncIterable<Entry> {
    const context = `cannot list ${dir}`
    for (let offset = 0; ; ) {
      let page: Resource | undefined = offset === 0 ? this.takeFirstPage(dir) : undefined
      try {
        page ??= await this.resource(dir, context, {limit: this.pageSize, offset})
      } catch (error) {
        throw asMissingDirectory(error)
      }

      if (page.type !== 'dir') throw new ConflictError(`${context}: not a directory`, 'not-directory')
      const items = page._embedded?.items ?? []
      for (const item of items) yield this.toEntry(item)
      offset += items.length
      if (items.length === 0 || offset >= (page._embedded?.total ?? 0)) return
    }
  }

  async stat(path: string): Promise<Entry> {
    const changes = this.http.changes
    const resource = await this.resource(path, `cannot stat ${path}`, {fields: STAT_PAGE_FIELDS, limit: this.pageSize})
    this.firstPage = resource.type === 'dir' && resource._embedded ? {dir: path, page: resource, at: Date.now(), changes} : undefined
    const {_embedded: _, ...own} = resource
    return this.toEntry(own)
  }

  /** The first page `stat` brought for `dir`, once, while fresh and nothing has changed since. */
  private takeFirstPage(dir: string): Resource | undefined {
    const cached = this.firstPage
    if (cached?.dir !== dir) return undefined
    this.firstPage = undefined
    const fresh = Date.now() - cached.at <= FIRST_PAGE_MAX_AGE_MS && cached.changes === this.http.changes
    return fresh ? cached.page : undefined
  }

  async mkdir(path: string): Promise<Entry> {
    const context = `cannot create directory ${path}`
    if (path === '/') throw new ConflictError(`${context}: the root always exists`, 'exists')
    await this.http.call<Link>({method: 'PUT', url: '/resources', params: {path: toDiskPath(path)}, context})
    return this.statAs(path, context)
  }

  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    const context = `cannot remove ${path}`
    if (path === '/') throw new UsageError('refusing to remove the root directory')
    const entry = await this.statAs(path, context)
    if (entry.type === 'dir' && !options.recursive) throw new UsageError(`${context}: is a directory; use -r`)
    const response = await this.http.call<Link | ''>({
      method: 'DELETE',
      url: '/resources',
      params: {path: toDiskPath(path), permanently: Boolean(options.permanently)},
      context,
    })
    if (response.status === 202 && response.data) await this.waitFor(response.data, context)
  }

  /**
   * Opens a file through a download link. A listed `entry` spares the stat,
   * and a link resolved ahead spares the link request; when that link fails
   * (it may have expired), a fresh one is asked for.
   */
  async openRead(path: string, options: ReadOptions = {}): Promise<Readable> {
    const context = `cannot read ${path}`
    const entry = options.entry?.path === path ? options.entry : await this.statAs(path, context)
    if (entry.type === 'dir') throw new UsageError(`${context}: is a directory`)
    const ahead = this.takePrepared(options.prepared, path)
    const range = options.range
    if (ahead) {
      try {
        return await this.http.download(ahead, context, options.signal, range)
      } catch (error) {
        if (options.signal?.aborted) throw error
        this.log(`yandex: ${(error as Error).message}; asking for a new download link`)
      }
    }

    // Link and body are retried together: a link whose host failed is not reused.
    return this.http.retrying(
      context,
      async () => this.http.download(await this.downloadLink(path, context, false, options.signal), context, options.signal, range),
      options.signal,
    )
  }

  /** Resolves the download link of a listed file ahead of its transfer. */
  async prepareRead(entry: Entry, options: ReadOptions = {}): Promise<Prepared> {
    const context = `cannot read ${entry.path}`
    if (entry.type === 'dir') throw new UsageError(`${context}: is a directory`)
    return new PreparedLink(this, entry.path, await this.downloadLink(entry.path, context, false, options.signal))
  }

  /** Resolves the upload link of `path` ahead of its transfer (for the same `overwrite`). */
  async prepareWrite(path: string, options: WriteOptions = {}): Promise<Prepared> {
    const overwrite = Boolean(options.overwrite)
    return new PreparedLink(this, path, await this.uploadLink(path, `cannot write ${path}`, overwrite, false, options.signal), overwrite)
  }

  private async downloadLink(path: string, context: string, retry: boolean, signal?: AbortSignal): Promise<Link> {
    const request = {method: 'GET', url: '/resources/download', params: {path: toDiskPath(path)}, context, retry, signal} as const
    return (await this.http.call<Link>(request)).data
  }

  private async uploadLink(path: string, context: string, overwrite: boolean, retry: boolean, signal?: AbortSignal): Promise<Link> {
    const {data} = await this.http.call<Link>({
      method: 'GET',
      url: '/resources/upload',
      params: {path: toDiskPath(path), overwrite},
      context,
      conflictHint: 'use --overwrite',
      retry,
      signal,
    })
    return data
  }

  /** The link of a prepared transfer, once, if it is this backend's, for this path and options, and young enough. */
  private takePrepared(prepared: Prepared | undefined, path: string, overwrite?: boolean): Link | undefined {
    if (!(prepared instanceof PreparedLink) || prepared.owner !== this || prepared.path !== path || prepared.used) return undefined
    prepared.used = true
    if (Date.now() - prepared.at > this.preparedMaxAgeMs || prepared.overwrite !== overwrite) return undefined
    return prepared.link
  }

  async write(path: string, source: Readable, options: WriteOptions = {}): Promise<Entry> {
    const context = `cannot write ${path}`
    const overwrite = Boolean(options.overwrite)
    const link =
      this.takePrepared(options.prepared, path, overwrite) ?? (await this.uploadLink(path, context, overwrite, true, options.signal))

    // Hash on the way out, so the content is read once.
    const hashing = new HashingStream((total) => options.onProgress?.(total))
    let sourceError: unknown
    pipeline(source, hashing, (error) => {
      sourceError = error
    })
    let status: number
    try {
      status = await this.http.upload(link, hashing, options.size, context, options.signal)
    } catch (error) {
      hashing.destroy()
      // A source that failed (a dropped download in a cross-backend copy) says more than the upload.
      throw sourceError instanceof DiskError ? sourceError : error
    }

    if (sourceError) throw sourceError
    const sent = {...hashing.digests(), size: hashing.bytes}
    // 202: received but still being processed; the file is not on the Disk until the operation ends.
    if (status === 202) await this.waitForUpload(link, path, context)
    const entry = await this.statAs(path, context)
    try {
      verifyDigests(context, sent, options.expect)
      verifyUpload(context, entry, sent)
    } catch (error) {
      // A wrong file must not pass for the right one, nor block a retry without --overwrite.
      await this.remove(path, {permanently: true}).catch(() => {})
      throw error
    }

    return entry
  }

  private async transfer(kind: 'copy' | 'move', src: string, dst: string, options: TransferOptions): Promise<Entry> {
    const context = `cannot ${kind} ${src} to ${dst}`
    if (src === '/') throw new UsageError(`${context}: cannot ${kind} the root`)
    if (isWithin(dst, src)) throw new UsageError(`${context}: the destination is the source or inside it`)
    const response = await this.http.call<Link>({
      method: 'POST',
      url: `/resources/${kind}`,
      params: {from: toDiskPath(src), path: toDiskPath(dst), overwrite: Boolean(options.overwrite)},
      context,
      conflictHint: 'use --overwrite',
    })
    if (response.status === 202) await this.waitFor(response.data, context)
    return this.statAs(dst, context)
  }

  copy(src: string, dst: string, options: TransferOptions = {}): Promise<Entry> {
    return this.transfer('copy', src, dst, options)
  }

  move(src: string, dst: string, options: TransferOptions = {}): Promise<Entry> {
    return this.transfer('move', src, dst, options)
  }

  /** `PUT /resources/publish`, then the resource's `public_url`. */
  async publish(path: string): Promise<string> {
    const context = `cannot share ${path}`
    await this.http.call<Link>({method: 'PUT', url: '/resources/publish', params: {path: toDiskPath(path)}, context})
    const resource = await this.resource(path, context, {fields: 'public_url'})
    if (!resource.public_url) throw new OperationFailedError(`${context}: the Disk published it but gave no public_url`)
    return resource.public_url
  }

  /** `PUT /resources/unpublish`. */
  async unpublish(path: string): Promise<void> {
    await this.http.call<Link>({method: 'PUT', url: '/resources/unpublish', params: {path: toDiskPath(path)}, context: `cannot unshare ${path}`})
  }

  /** The Disk's Trash (`/trash/resources`). */
  readonly trash: Trash = {
    list: () => this.trashItems(),
    restore: (item, options) => this.restoreFromTrash(item, options),
    empty: (item) => this.emptyTrash(item),
  }

  private async *trashItems(): AsyncGenerator<TrashItem> {
    const context = 'cannot list the trash'
    for (let offset = 0; ; ) {
      const {data: page} = await this.http.call<TrashResource>({
        method: 'GET',
        url: '/trash/resources',
        params: {path: 'trash:/', limit: this.pageSize, offset},
        context,
      })
      const items = page._embedded?.items ?? []
      for (const item of items) {
        yield {
          name: item.name,
          path: item.origin_path ? fromDiskPath(item.origin_path) : `/${item.name}`,
          id: item.path,
          type: item.type === 'dir' ? 'dir' : 'file',
          size: item.type === 'dir' ? null : (item.size ?? null),
          deleted: item.deleted ?? null,
        }
      }

      offset += items.length
      if (items.length === 0 || offset >= (page._embedded?.total ?? 0)) return
    }
  }

  /** Finds a trash item by its original path (the latest deleted wins), its trash path or its trash name. */
  private async findInTrash(item: string, context: string): Promise<TrashItem> {
    let found: TrashItem | undefined
    for await (const candidate of this.trashItems()) {
      const matches = candidate.path === item || candidate.id === item || candidate.id === `trash:/${item.replace(/^\//, '')}`
      if (matches && (!found || (candidate.deleted ?? '') > (found.deleted ?? ''))) found = candidate
    }

    if (!found) throw new NotFoundError(`${context}: not in the trash`, 'file')
    return found
  }

  private async restoreFromTrash(item: string, options: {to?: string; overwrite?: boolean} = {}): Promise<string> {
    const context = `cannot restore ${item}`
    const found = await this.findInTrash(item, context)
    const response = await this.http.call<Link>({
      method: 'PUT',
      url: '/trash/resources/restore',
      params: {path: found.id, overwrite: Boolean(options.overwrite)},
      context,
      conflictHint: 'use --overwrite',
    })
    if (response.status === 202) await this.waitFor(response.data, context)
    if (options.to && options.to !== found.path) {
      await this.transfer('move', found.path, options.to, {overwrite: options.overwrite})
      return options.to
    }

    return found.path
  }

  private async emptyTrash(item?: string): Promise<void> {
    const context = item ? `cannot delete ${item} from the trash` : 'cannot empty the trash'
    const id = item === undefined ? undefined : (await this.findInTrash(item, context)).id
    const response = await this.http.call<Link | ''>({method: 'DELETE', url: '/trash/resources', params: {path: id}, context})
    if (response.status === 202 && response.data) await this.waitFor(response.data, context)
  }

  /** `POST /resources/upload?url=&path=`: the Disk downloads the URL itself; the operation is polled to its end. */
  async fetchUrl(url: string, path: string): Promise<void> {
    const context = `cannot upload ${url} to ${path}`
    const response = await this.http.call<Link>({
      method: 'POST',
      url: '/resources/upload',
      params: {url, path: toDiskPath(path)},
      context,
      conflictHint: 'use another path',
    })
    if (response.data?.href) await this.waitFor(response.data, context)
  }

  async about(): Promise<About> {
    const {data} = await this.http.call<DiskInfo>({method: 'GET', url: '/', context: 'cannot read the Disk quota'})
    const total = numberOrNull(data.total_space)
    const used = numberOrNull(data.used_space)
    return {
      total,
      used,
      free: total === null || used === null ? null : Math.max(0, total - used),
      trash: numberOrNull(data.trash_size),
    }
  }

  /**
   * Polls an asynchronous operation with backoff until it ends: `success`
   * resolves, `failed` is an OperationFailedError, and one still in progress
   * past the timeout is a TimeoutError. The status is read from the API host
   * (built from the operation id where the link has one), so the token goes
   * nowhere else.
   */
  private waitFor(link: Link, context: string): Promise<void> {
    return this.pollUntilDone(operationUrl(link.href), context)
  }

  /**
   * Waits for an upload the href answered 202: through the operation whose
   * id came with the link, or, where the link had none, until a stat finds
   * the file (same backoff and timeout).
   */
  private waitForUpload(link: Link, path: string, context: string): Promise<void> {
    if (link.operation_id) return this.pollUntilDone(`/operations/${encodeURIComponent(link.operation_id)}`, context)
    return this.pollUntilDone(async () => {
      try {
        await this.statAs(path, context)
        return 'success'
      } catch (error) {
        if (error instanceof NotFoundError) return 'in-progress'
        throw error
      }
    }, context)
  }

  /** The polling loop of waitFor: `status` is an operation URL on the API host, or a function that tells. */
  private async pollUntilDone(status: string | (() => Promise<Operation['status']>), context: string): Promise<void> {
    const read =
      typeof status === 'string'
        ? () => this.http.call<Operation>({method: 'GET', url: status, context}).then(({data}) => data.status)
        : status
    const deadline = Date.now() + this.operationTimeoutMs
    let wait = this.pollMs
    for (;;) {
      const state = await read()
      if (state === 'success') return
      if (state === 'failed') {
        throw new OperationFailedError(`${context}: the server reported the operation failed`, {
          backendCode: 'operation status failed',
        })
      }

      if (Date.now() + wait > deadline) {
        throw new TimeoutError(`${context}: the operation was still in progress after ${this.operationTimeoutMs} ms`)
      }

      await sleep(wait)
      wait = Math.min(wait * 2, this.pollMaxMs)
    }
  }
}

/** A link resolved ahead of a transfer; good once, for a limited time (a failed link is dead). */
class PreparedLink implements Prepared {
  readonly at = Date.now()
  used = false

  constructor(
    readonly owner: YandexBackend,
    readonly path: string,
    readonly link: Link,
    /** For upload links: the overwrite flag they were asked with. */
    readonly overwrite?: boolean,
  ) {}
}

/** `/operations/ID` (or `?id=ID`) of an operation link, resolved against the API base by the HTTP layer. */
function operationUrl(href: string): string {
  const url = new URL(href, 'https://invalid.example/')
  const id = /\/operations\/([^/]+)\/?$/.exec(url.pathname)?.[1] ?? url.searchParams.get('id')
  return id ? `/operations/${id}` : href
}

/** Compares what the Disk stored with what was sent. */
function verifyUpload(context: string, entry: Entry, sent: Digests & {size: number}): void {
  if (entry.type !== 'file') throw new IntegrityError(`${context}: the uploaded path is not a file`)
  if (entry.size !== null && entry.size !== sent.size) {
    throw new IntegrityError(`${context}: size mismatch (sent ${sent.size} bytes, the Disk has ${entry.size})`)
  }

  verifyDigests(`${context}: the Disk's copy differs from what was sent`, sent, {md5: entry.md5, sha256: entry.sha256})
}

/** A listed directory that is missing is "directory not found" (exit 3), whatever the API's code. */
function asMissingDirectory(error: unknown): unknown {
  if (error instanceof NotFoundError && error.kind === 'file') {
    return new NotFoundError(error.message, 'dir', {backendCode: error.backendCode, hint: error.hint, cause: error})
  }

  return error
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

export const createYandexBackend: BackendFactory = async (settings) =>
  new YandexBackend({
    token: settings.token,
    apiUrl: settings.yandexApiUrl,
    retries: settings.retries,
    retryBaseMs: settings.retryBaseMs,
    log: settings.log,
  })
