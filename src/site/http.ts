/**
 * The CouchDB-protocol subset every site server speaks (DESIGN.md §12), over
 * node:http. Errors are `{"error", "reason"}` with CouchDB's statuses; a
 * request that fails never touches what is stored.
 */
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {badRequest, CouchError, notFound} from './errors.js'
import {checkId, type RecordStore} from './store.js'

export const DB_NAME = 'records'
const MAX_BODY = 16 * 1024 * 1024

export type Extra = (req: http.IncomingMessage, url: URL, res: http.ServerResponse) => Promise<boolean>

export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value) + '\n'
  if (res.headersSent) {
    res.end(body)
    return
  }
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'must-revalidate'})
  res.end(body)
}

export async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new CouchError(413, 'too_large', 'the request entity is too large')
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') throw badRequest('Request body is empty')
  try {
    return JSON.parse(text)
  } catch {
    throw badRequest('invalid UTF-8 JSON')
  }
}

function flag(url: URL, name: string): boolean {
  return url.searchParams.get(name) === 'true'
}

function jsonParam<T>(url: URL, name: string): T | undefined {
  const raw = url.searchParams.get(name)
  if (raw === null) return undefined
  try {
    return JSON.parse(raw) as T
  } catch {
    throw badRequest(`${name} must be JSON`)
  }
}

function intParam(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name)
  if (raw === null) return undefined
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0) throw badRequest(`${name} must be a non-negative integer`)
  return n
}

function sinceParam(raw: string | null, store: RecordStore): number {
  if (raw === null || raw === '' || raw === '0') return 0
  if (raw === 'now') return store.updateSeq
  const text = raw.startsWith('"') ? raw.slice(1, -1) : raw
  const n = Number(text.split('-')[0])
  if (!Number.isInteger(n) || n < 0) throw badRequest('since must be a sequence number or now')
  return n
}

/** The CouchDB handler for one database; `stopping` ends longpolls at shutdown. */
export class RecordsApi {
  constructor(
    private readonly store: RecordStore,
    private readonly stopping: AbortSignal,
  ) {}

  async handle(req: http.IncomingMessage, url: URL, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const parts = url.pathname.split('/').slice(1)
    if (parts.length === 1 || (parts.length === 2 && parts[1] === '')) return this.database(method, res)
    const segment = decodeURIComponent(parts[1])
    const rest = parts.slice(2).map((p) => decodeURIComponent(p))
    switch (segment) {
      case '_changes':
        return this.changes(req, url, res)
      case '_revs_diff':
        return this.post(method, res, async () => this.store.revsDiff(object(await readJson(req))))
      case '_bulk_docs':
        return this.post(method, res, () => this.bulkDocs(req), 201)
      case '_bulk_get':
        return this.post(method, res, () => this.bulkGet(req, url))
      case '_all_docs':
        return this.allDocs(req, url, res, method)
      case '_ensure_full_commit':
        return this.post(method, res, async () => ({ok: true, instance_start_time: '0'}), 201)
      case '_local':
        return this.local(req, method, rest.join('/'), res)
      case '_design':
        throw notFound('missing')
      default:
        if (segment.startsWith('_')) throw new CouchError(400, 'illegal_docid', 'Only reserved document ids may start with underscore.')
        if (rest.length > 0) throw new CouchError(400, 'bad_request', 'Attachments are not supported')
        return this.document(req, url, method, segment, res)
    }
  }

  private database(method: string, res: http.ServerResponse): void {
    if (method === 'PUT') throw new CouchError(412, 'file_exists', 'The database could not be created, the file already exists.')
    if (method !== 'GET' && method !== 'HEAD') throw new CouchError(405, 'method_not_allowed', 'Only GET,HEAD,PUT allowed')
    sendJson(res, 200, {
      db_name: DB_NAME,
      ...this.store.info(),
      purge_seq: 0,
      instance_start_time: '0',
      uuid: this.store.uuid,
    })
  }

  private async post(method: string, res: http.ServerResponse, job: () => Promise<unknown>, status = 200): Promise<void> {
    if (method !== 'POST') throw new CouchError(405, 'method_not_allowed', 'Only POST allowed')
    sendJson(res, status, await job())
  }

  private async bulkDocs(req: http.IncomingMessage): Promise<unknown> {
    const body = object(await readJson(req))
    if (!Array.isArray(body.docs)) throw badRequest('POST body must include `docs` parameter.')
    const newEdits = body.new_edits !== false
    const results = await this.store.writeDocs(body.docs as unknown[], newEdits)
    return newEdits ? results : results.filter((r) => r.error)
  }

  private async bulkGet(req: http.IncomingMessage, url: URL): Promise<unknown> {
    const body = object(await readJson(req))
    if (!Array.isArray(body.docs)) throw badRequest('Missing JSON list of `docs`.')
    const entries = body.docs as Array<{id?: unknown; rev?: unknown}>
    const valid = entries.filter((e) => typeof e?.id === 'string') as Array<{id: string; rev?: unknown}>
    const found = await this.store.bulkGet(
      valid.map((e) => ({id: e.id, rev: typeof e.rev === 'string' ? e.rev : undefined})),
      {revs: flag(url, 'revs'), latest: flag(url, 'latest')},
    )
    let next = 0
    const results = entries.map((entry) => {
      if (typeof entry?.id !== 'string') return {id: null, docs: [{error: {id: null, rev: null, error: 'illegal_docid', reason: 'Document id must be a string'}}]}
      const id = entry.id
      const docs: unknown[] = found[next++].map((r) => ('ok' in r ? r : {error: {id, rev: r.missing, error: 'not_found', reason: 'missing'}}))
      if (docs.length === 0) docs.push({error: {id, rev: 'undefined', error: 'not_found', reason: 'missing'}})
      return {id, docs}
    })
    return {results}
  }

  private async changes(req: http.IncomingMessage, url: URL, res: http.ServerResponse): Promise<void> {
    const params = url.searchParams
    if (req.method === 'POST') {
      // PouchDB posts doc_ids filters; the query string still carries the rest.
      await readJson(req).catch(() => undefined)
    }
    const filter = params.get('filter')
    let owner: string | undefined
    if (filter !== null) {
      if (filter !== 'site/owner') throw notFound(`filter ${filter} does not exist; only site/owner is built in`)
      owner = params.get('owner') ?? undefined
      if (!owner) throw badRequest('filter site/owner needs owner=NAME')
    }
    const since = sinceParam(params.get('since'), this.store)
    const limit = intParam(url, 'limit')
    const feed = params.get('feed') ?? 'normal'
    if (feed !== 'normal' && feed !== 'longpoll') throw badRequest(`feed=${feed} is not supported (normal, longpoll)`)
    const options = {since, limit: limit === 0 ? 1 : limit, allDocs: params.get('style') === 'all_docs', owner, includeDocs: flag(url, 'include_docs')}
    let result = await this.store.changes(options)
    if (feed === 'longpoll' && result.results.length === 0) {
      const timeout = Math.min(intParam(url, 'timeout') ?? 60_000, 600_000)
      const heartbeat = params.get('heartbeat') === 'true' ? 60_000 : (intParam(url, 'heartbeat') ?? 0)
      res.writeHead(200, {'content-type': 'application/json', 'cache-control': 'must-revalidate'})
      const beat = heartbeat > 0 ? setInterval(() => res.write('\n'), heartbeat) : undefined
      const closed = new AbortController()
      res.once('close', () => closed.abort())
      const signal = AbortSignal.any([closed.signal, this.stopping])
      const deadline = Date.now() + timeout
      try {
        let seen = result.last_seq
        // A filtered feed may see changes that are all someone else's; wait again until one passes or time is up.
        while (result.results.length === 0 && !signal.aborted && Date.now() < deadline) {
          await this.store.waitForChange(seen, deadline - Date.now(), signal)
          result = await this.store.changes({...options, since: seen})
          seen = result.last_seq
        }
      } finally {
        clearInterval(beat)
      }
      res.end(JSON.stringify(result) + '\n')
      return
    }
    sendJson(res, 200, result)
  }

  private async allDocs(req: http.IncomingMessage, url: URL, res: http.ServerResponse, method: string): Promise<void> {
    let keys: string[] | undefined
    if (method === 'POST') {
      const body = object(await readJson(req))
      if (body.keys !== undefined) {
        if (!Array.isArray(body.keys) || body.keys.some((k) => typeof k !== 'string')) throw badRequest('`keys` must be an array of strings')
        keys = body.keys as string[]
      }
    } else if (method !== 'GET' && method !== 'HEAD') throw new CouchError(405, 'method_not_allowed', 'Only GET,HEAD,POST allowed')
    keys ??= jsonParam<string[]>(url, 'keys')
    const key = jsonParam<string>(url, 'key')
    sendJson(
      res,
      200,
      await this.store.allDocs({
        keys: key !== undefined ? [key] : keys,
        startkey: jsonParam<string>(url, 'startkey') ?? jsonParam<string>(url, 'start_key'),
        endkey: jsonParam<string>(url, 'endkey') ?? jsonParam<string>(url, 'end_key'),
        limit: intParam(url, 'limit'),
        skip: intParam(url, 'skip'),
        includeDocs: flag(url, 'include_docs'),
        descending: flag(url, 'descending'),
      }),
    )
  }

  private async local(req: http.IncomingMessage, method: string, id: string, res: http.ServerResponse): Promise<void> {
    if (id === '') throw badRequest('Missing _local document id')
    if (method === 'GET' || method === 'HEAD') return sendJson(res, 200, await this.store.getLocal(id))
    if (method === 'PUT') return sendJson(res, 201, await this.store.putLocal(id, await readJson(req)))
    if (method === 'DELETE') return sendJson(res, 200, await this.store.putLocal(id, {_deleted: true}))
    throw new CouchError(405, 'method_not_allowed', 'Only GET,HEAD,PUT,DELETE allowed')
  }

  private async document(req: http.IncomingMessage, url: URL, method: string, id: string, res: http.ServerResponse): Promise<void> {
    checkId(id)
    if (method === 'GET' || method === 'HEAD') {
      const openRevs = url.searchParams.get('open_revs')
      if (openRevs !== null) {
        const wanted = openRevs === 'all' ? 'all' : jsonParam<string[]>(url, 'open_revs')
        if (wanted !== 'all' && (!Array.isArray(wanted) || wanted.some((r) => typeof r !== 'string'))) throw badRequest('open_revs must be all or a JSON array')
        return sendJson(res, 200, await this.store.openRevs(id, wanted!, {revs: flag(url, 'revs'), latest: flag(url, 'latest')}))
      }
      const rev = url.searchParams.get('rev') ?? undefined
      return sendJson(res, 200, await this.store.get(id, {rev, revs: flag(url, 'revs'), conflicts: flag(url, 'conflicts')}))
    }
    if (method === 'PUT') {
      const body = object(await readJson(req))
      if (body._id !== undefined && body._id !== id) throw badRequest('Document id must match the URL')
      const rev = url.searchParams.get('rev') ?? undefined
      const doc = {...body, _id: id, ...(rev && body._rev === undefined ? {_rev: rev} : {})}
      if (url.searchParams.get('new_edits') === 'false') {
        const [error] = await this.store.writeDocs([doc], false)
        if (error) throw new CouchError(400, error.error!, error.reason!)
        return sendJson(res, 201, {ok: true, id, rev: doc._rev})
      }
      return sendJson(res, 201, await this.store.put(doc))
    }
    if (method === 'DELETE') {
      const rev = url.searchParams.get('rev') ?? req.headers['if-match']
      if (typeof rev !== 'string') throw new CouchError(409, 'conflict', 'Document update conflict.')
      return sendJson(res, 200, await this.store.put({_id: id, _rev: rev, _deleted: true}))
    }
    throw new CouchError(405, 'method_not_allowed', 'Only DELETE,GET,HEAD,PUT allowed')
  }
}

function object(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest('Request body must be a JSON object')
  return value as Record<string, unknown>
}

export interface HttpOptions {
  host: string
  port: number
  store: RecordStore
  /** Routes outside /records (status, time, push); return true when handled. */
  extra?: Extra
  log?: (event: Record<string, unknown>) => void
}

/** An HTTP server with `/`, `/records/...` and the caller's extra routes; garbage on the socket only closes that socket. */
export class SiteHttp {
  private readonly server: http.Server
  private readonly stopping = new AbortController()
  private readonly api: RecordsApi

  constructor(private readonly options: HttpOptions) {
    this.api = new RecordsApi(options.store, this.stopping.signal)
    this.server = http.createServer((req, res) => void this.route(req, res))
    this.server.keepAliveTimeout = 5000
    this.server.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      socket.destroy()
    })
  }

  async start(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    return this.server.address() as AddressInfo
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo
  }

  async stop(): Promise<void> {
    this.stopping.abort()
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeIdleConnections()
    setTimeout(() => this.server.closeAllConnections(), 1000).unref()
    await closed
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://site')
      if (this.options.extra && (await this.options.extra(req, url, res))) return
      if (url.pathname === '/') {
        sendJson(res, 200, {couchdb: 'Welcome', version: '3.3.3', vendor: {name: 'disk-client site'}, uuid: this.options.store.uuid, features: []})
        return
      }
      const first = url.pathname.split('/')[1]
      if (first === DB_NAME) return await this.api.handle(req, url, res)
      if (first === '_session') return sendJson(res, 200, {ok: true, userCtx: {name: null, roles: ['_admin']}, info: {}})
      throw notFound(first.startsWith('_') ? 'missing' : 'Database does not exist.')
    } catch (error) {
      if (error instanceof CouchError) {
        sendJson(res, error.status, error.toJSON())
      } else if (error instanceof URIError) {
        sendJson(res, 400, {error: 'bad_request', reason: 'bad percent-encoding in the path'})
      } else {
        this.options.log?.({event: 'error', error: String((error as Error)?.message ?? error)})
        if (!res.headersSent) sendJson(res, 500, {error: 'unknown_error', reason: String((error as Error)?.message ?? error)})
        else res.destroy()
      }
      req.resume()
    }
  }
}
