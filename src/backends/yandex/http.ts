import type {AxiosInstance, AxiosResponse, Method, RawAxiosResponseHeaders} from 'axios'
import http, {type IncomingMessage, type OutgoingHttpHeaders} from 'node:http'
import https from 'node:https'
import {Readable, Transform} from 'node:stream'

import {
  AuthError,
  ConflictError,
  DiskError,
  type DiskErrorOptions,
  NotFoundError,
  OperationFailedError,
  TemporaryError,
  UsageError,
} from '../errors.js'
import {type ByteRange, rangeHeader, sliceStream} from '../range.js'
import {parseRetryAfter, withRetries} from '../retry.js'
import {isApiErrorBody, type Link} from './api/types.js'

/** Statuses worth another try (DESIGN.md §4): throttling, locks and server-side failures. */
const RETRYABLE_STATUS = new Set([423, 429, 500, 502, 503, 504])

/** Where a missing or rejected token is fixed; part of every AuthError. */
export const TOKEN_HINT = 'set YANDEX_DISK_TOKEN, pass --token, or run `disk-client config set yandex.token <token>`'

export interface YandexHttpOptions {
  /** API base, e.g. `https://cloud-api.yandex.net/v1/disk` (no trailing slash needed). */
  apiUrl: string
  token: string
  /** Attempts after the first for temporary failures. */
  retries: number
  /** First backoff delay in ms; doubles per attempt (retry.ts). */
  retryBaseMs: number
  /** Socket inactivity limit in ms for every request, including long transfers. */
  timeoutMs: number
  log: (message: string) => void
}

export type Query = Record<string, string | number | boolean | undefined>

export interface ApiCall {
  method: Method
  /** A path below the API base (`/resources/copy`), or an absolute URL on the API host. */
  url: string
  params?: Query
  /** Says what failed, e.g. `cannot stat /a.txt`; every error message starts with it. */
  context: string
  /** The hint attached to "already exists" conflicts, e.g. `use --overwrite`. */
  conflictHint?: string
  /** Retry temporary failures (default true); off when an outer loop retries. */
  retry?: boolean
  signal?: AbortSignal
}

/**
 * Encodes a query the strict way (RFC 3986 via encodeURIComponent): `+`
 * becomes %2B, a space %20, `:` and `/` %3A and %2F. axios's default would
 * write a space as `+` and leave `:` bare.
 */
export function serializeQuery(params: Query): string {
  return Object.entries(params)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`)
    .join('&')
}

/**
 * The HTTP layer of the Yandex backend: one client for the API host, which
 * carries the OAuth token, and one for upload and download hrefs, which
 * never does. Errors come out typed (errors.ts); temporary ones are retried
 * with the shared policy (retry.ts), honouring Retry-After.
 */
export class YandexHttp {
  private readonly apiBase: string
  private readonly apiOrigin: string
  /** axios, loaded only when HTTP(S)_PROXY is set (node:http does not honour it; axios does). */
  private axiosClients: Promise<AxiosClients> | undefined

  constructor(private readonly options: YandexHttpOptions) {
    this.apiBase = options.apiUrl.replace(/\/+$/, '')
    this.apiOrigin = new URL(this.apiBase).origin
  }

  /** The axios clients of the proxy path: `api` for the API host, `hosts` for upload and download hrefs (no token, ever). */
  private viaAxios(): Promise<AxiosClients> {
    this.axiosClients ??= import('axios').then(({default: axios}) => {
      const common = {
        timeout: this.options.timeoutMs,
        validateStatus: () => true,
        paramsSerializer: {serialize: serializeQuery},
        headers: {'User-Agent': 'disk-client'},
      }
      // The API never redirects; following one could hand the token to another host.
      return {api: axios.create({...common, maxRedirects: 0, responseType: 'json'}), hosts: axios.create(common)}
    })
    return this.axiosClients
  }

  /** The absolute URL of an API path. */
  url(path: string): string {
    return /^https?:\/\//i.test(path) ? path : this.apiBase + path
  }

  /** The Authorization header, for the API's own origin only. */
  private authFor(url: string): Record<string, string> {
    return new URL(url).origin === this.apiOrigin ? {Authorization: `OAuth ${this.options.token}`} : {}
  }

  /** Runs `operation` under the retry policy, logging each retry. */
  retrying<T>(context: string, operation: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withRetries(operation, {
      retries: this.options.retries,
      baseMs: this.options.retryBaseMs,
      signal,
      onRetry: (error, attempt, delay) =>
        this.options.log(`yandex: ${error.line}; retry ${attempt} of ${this.options.retries} in ${delay} ms`),
    })
  }

  /** Counts requests that may change the Disk (any API method but GET, and every upload), so caches can tell they are stale. */
  changes = 0

  /** One API request; resolves with the status and the parsed body of a 2xx answer. */
  async call<T>(call: ApiCall): Promise<{status: number; data: T}> {
    if (call.method !== 'GET') this.changes++
    const once = async () => {
      const url = this.url(call.url)
      let response: {status: number; data: unknown; headers: RawAxiosResponseHeaders | Record<string, unknown>}
      try {
        if (usesEnvProxy()) {
          const {api} = await this.viaAxios()
          response = await api.request({method: call.method, url, params: call.params, headers: this.authFor(url), signal: call.signal})
        } else {
          response = await this.callDirect(call, url)
        }
      } catch (error) {
        throw transportError(error, call.context)
      }

      if (response.status >= 300) {
        throw apiError(response.status, response.data, response.headers, call.context, call.conflictHint)
      }

      return {status: response.status, data: response.data as T}
    }

    return call.retry === false ? once() : this.retrying(call.context, once, call.signal)
  }

  /**
   * One API request through node:http/https (keep-alive global agents), as
   * axios would make it here: the query serialised strictly, the token for
   * the API's origin only, no redirects followed, the body parsed as JSON
   * when it is JSON and kept as text otherwise. A fraction of axios's CPU a
   * request, and axios is not even loaded.
   */
  private async callDirect(call: ApiCall, url: string): Promise<{status: number; data: unknown; headers: Record<string, unknown>}> {
    const target = new URL(url)
    const query = serializeQuery(call.params ?? {})
    if (query) target.search = target.search ? `${target.search}&${query}` : `?${query}`
    const response = await sendRequest(target, call.method, {Accept: 'application/json, text/plain, */*', ...this.authFor(url)}, this.options.timeoutMs, call.signal)
    const text = await readAll(response, API_BODY_LIMIT)
    return {status: response.statusCode ?? 0, data: parseJsonLoosely(text), headers: response.headers}
  }

  /**
   * Streams `body` to an upload href with the method the API gave. Nothing is
   * buffered: redirects are off (following one would mean keeping the body).
   * Not retried here: the stream is spent, and a failed link is dead.
   * Resolves with the status: 201 stored, 202 accepted but still being processed.
   */
  async upload(link: Link, body: Readable, size: number | undefined, context: string, signal?: AbortSignal): Promise<number> {
    this.changes++
    const headers: Record<string, string> = {'Content-Type': 'application/octet-stream'}
    if (size !== undefined) headers['Content-Length'] = String(size)
    let response: {status: number; data: unknown; headers: RawAxiosResponseHeaders | Record<string, unknown>}
    try {
      if (usesEnvProxy()) {
        const {hosts} = await this.viaAxios()
        response = await hosts.request({
          method: (link.method || 'PUT') as Method,
          url: link.href,
          data: body,
          headers,
          maxRedirects: 0,
          maxBodyLength: Number.POSITIVE_INFINITY,
          maxContentLength: Number.POSITIVE_INFINITY,
          responseType: 'text',
          signal,
        })
      } else {
        const answer = await sendRequest(new URL(link.href), link.method || 'PUT', headers, this.options.timeoutMs, signal, body)
        response = {status: answer.statusCode ?? 0, data: await readAll(answer, API_BODY_LIMIT), headers: answer.headers}
      }
    } catch (error) {
      throw transportError(error, context)
    }

    if (response.status >= 300) {
      if (response.status === 404 || response.status === 410) {
        throw new TemporaryError(`${context}: the upload link expired (HTTP ${response.status})`)
      }

      throw apiError(response.status, response.data, response.headers, context)
    }

    return response.status
  }

  /**
   * Opens a download href, following redirects to the storage host, and
   * returns the body as a stream whose errors are typed (a dropped connection
   * is a TemporaryError) and which fails if it ends short of Content-Length.
   */
  async download(link: Link, context: string, signal?: AbortSignal, range?: ByteRange): Promise<Readable> {
    if (!usesEnvProxy()) return this.downloadDirect(link, context, signal, range)
    let response: AxiosResponse<Readable>
    const headers: Record<string, string> = range ? {Range: rangeHeader(range)} : {}
    try {
      const {hosts} = await this.viaAxios()
      response = await hosts.request<Readable>({
        method: (link.method || 'GET') as Method,
        url: link.href,
        responseType: 'stream',
        headers,
        maxRedirects: 10,
        maxContentLength: Number.POSITIVE_INFINITY,
        // Defence in depth: nothing we send here carries a token, and no redirect may add one.
        beforeRedirect: (options: Record<string, unknown>) => {
          const redirectHeaders = options.headers as Record<string, unknown> | undefined
          if (redirectHeaders) {
            for (const name of Object.keys(redirectHeaders)) {
              if (name.toLowerCase() === 'authorization') delete redirectHeaders[name]
            }
          }
        },
        signal,
      })
    } catch (error) {
      throw transportError(error, context)
    }

    if (range && response.status === 416) {
      // Asked for bytes past the end: there are none.
      response.data.destroy()
      return Readable.from([])
    }

    if (response.status >= 300) {
      const text = await readSome(response.data)
      throw apiError(response.status, text, response.headers, context)
    }

    const body = checkedBody(response.data, response.headers, context)
    // A host that ignored the Range header sent the whole file: cut the range out here.
    if (range && response.status !== 206) return body.pipe(sliceStream(range))
    return body
  }

  /**
   * download() through node:http/https directly (keep-alive global agents):
   * the same redirects, timeout, typed errors and length check as the axios
   * path at a fraction of its CPU a file (no config merging, interceptors or
   * follow-redirects wrapper). Nothing here ever sends a token.
   */
  private async downloadDirect(link: Link, context: string, signal?: AbortSignal, range?: ByteRange): Promise<Readable> {
    let response: IncomingMessage
    const headers: Record<string, string> = range ? {Range: rangeHeader(range)} : {}
    try {
      response = await openHref(new URL(link.href), link.method || 'GET', this.options.timeoutMs, signal, MAX_REDIRECTS, headers)
    } catch (error) {
      throw transportError(error, context)
    }

    if (response.statusCode! >= 300) {
      const text = await readSome(response)
      throw apiError(response.statusCode!, text, response.headers, context)
    }

    const body = checkedBody(response, response.headers, context)
    // A host that ignored the Range header sent the whole file: cut the range out here.
    if (range && response.statusCode !== 206) return body.pipe(sliceStream(range))
    return body
  }
}

const MAX_REDIRECTS = 10

interface AxiosClients {
  api: AxiosInstance
  hosts: AxiosInstance
}

/** The most of an API answer (or an upload host's) read into memory: listings pages are a few hundred KiB at most. */
const API_BODY_LIMIT = 16 * 1024 * 1024

/**
 * One request that follows no redirect: the headers, an optional streamed
 * body (a failing body fails the request with its own error), and a socket
 * that may idle `timeoutMs` at most. Resolves with the response.
 */
function sendRequest(
  url: URL,
  method: string,
  headers: OutgoingHttpHeaders,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  body?: Readable,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      reject(Object.assign(new Error(`unsupported protocol ${url.protocol}`), {code: 'ERR_BAD_OPTION_VALUE'}))
      return
    }

    const client = url.protocol === 'https:' ? https : http
    const request = client.request(url, {method, signal, headers: {'User-Agent': 'disk-client', ...headers}}, resolve)
    if (timeoutMs > 0) {
      request.setTimeout(timeoutMs, () =>
        request.destroy(Object.assign(new Error(`timeout of ${timeoutMs}ms exceeded`), {code: 'ETIMEDOUT'})),
      )
    }

    request.on('error', reject)
    if (!body) {
      request.end()
      return
    }

    body.on('error', (error) => request.destroy(error))
    body.pipe(request)
  })
}

/** Reads a whole (small) body as text; more than `limit` bytes is an error. */
async function readAll(stream: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of stream) {
    length += (chunk as Buffer).length
    if (length > limit) {
      stream.destroy()
      throw new Error(`the answer is larger than ${limit} bytes`)
    }

    chunks.push(chunk as Buffer)
  }

  return Buffer.concat(chunks).toString('utf8')
}

/** JSON when the text is JSON, the text itself otherwise (an HTML error page, a plain-text status), as axios does. */
function parseJsonLoosely(text: string): unknown {
  if (text === '') return text
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** An HTTP(S)_PROXY in the environment: axios honours it, node:http does not, so downloads keep to axios then. */
function usesEnvProxy(): boolean {
  const env = process.env
  return Boolean(env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy)
}

/** A redirect status that carries a Location to follow. */
const REDIRECTS = new Set([301, 302, 303, 307, 308])

/**
 * One request to an href, following up to `redirects` redirects (a 303, or a
 * 301/302 after a non-GET, becomes a GET, as browsers and axios do). The
 * socket may idle `timeoutMs` at most, until the response and while its body
 * streams. Resolves with the first non-redirect response.
 */
async function openHref(
  url: URL,
  method: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  redirects: number,
  extraHeaders: Record<string, string> = {},
): Promise<IncomingMessage> {
  const response = await sendRequest(url, method, {Accept: '*/*', ...extraHeaders}, timeoutMs, signal)
  const status = response.statusCode ?? 0
  const location = response.headers.location
  if (!REDIRECTS.has(status) || !location) return response
  response.resume()
  if (redirects <= 0) throw Object.assign(new Error('Maximum number of redirects exceeded'), {code: 'ERR_FR_TOO_MANY_REDIRECTS'})
  const next = new URL(location, url)
  const nextMethod = status === 303 || ((status === 301 || status === 302) && method !== 'GET' && method !== 'HEAD') ? 'GET' : method
  return openHref(next, nextMethod, timeoutMs, signal, redirects - 1, extraHeaders)
}

/** Reads at most a few KiB of an error body, then lets the connection go. */
async function readSome(stream: Readable, limit = 4096): Promise<string> {
  const chunks: Buffer[] = []
  let length = 0
  try {
    for await (const chunk of stream) {
      chunks.push(Buffer.from(chunk as Uint8Array))
      length += (chunk as Uint8Array).length
      if (length >= limit) break
    }
  } catch {
    // The status already says what went wrong.
  } finally {
    stream.destroy()
  }

  return Buffer.concat(chunks).toString('utf8').slice(0, limit)
}

/** Passes a response body through, typing its errors and checking its length. */
function checkedBody(source: Readable, headers: RawAxiosResponseHeaders | Record<string, unknown>, context: string): Readable {
  const declared = Number((headers as Record<string, unknown>)['content-length'])
  const expected = Number.isFinite(declared) && declared >= 0 ? declared : undefined
  let received = 0
  const out = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length
      callback(null, chunk)
    },
    flush(callback) {
      if (expected !== undefined && received !== expected) {
        callback(new TemporaryError(`${context}: the download ended after ${received} of ${expected} bytes`))
        return
      }

      callback()
    },
  })
  source.on('error', (error) => out.destroy(transportError(error, context) as Error))
  source.on('aborted', () =>
    out.destroy(new TemporaryError(`${context}: the download connection was aborted${expected === undefined ? '' : ` before all ${expected} bytes came`}`)),
  )
  out.on('close', () => source.destroy())
  source.pipe(out)
  return out
}

/** Says an API answer's detail in one line, e.g. `Resource not found` (description first: it is in English). */
function detailOf(body: unknown): string | undefined {
  let text: string | undefined
  if (isApiErrorBody(body)) text = body.description || body.message
  // An HTML error page (a proxy's, say) says nothing the status does not.
  else if (typeof body === 'string' && !body.trimStart().startsWith('<')) text = body
  const line = text
    ?.split('\n')
    .map((part) => part.trim())
    .find(Boolean)
  return line ? line.replace(/\.$/, '').slice(0, 300) : undefined
}

/**
 * Maps an error answer to a typed error: by the API's `error` code where the
 * body is JSON, by HTTP status otherwise (upload and download hosts answer
 * in plain text). DESIGN.md §4.
 */
export function apiError(
  status: number,
  body: unknown,
  headers: RawAxiosResponseHeaders | Record<string, unknown>,
  context: string,
  conflictHint?: string,
): DiskError {
  const code = isApiErrorBody(body) ? body.error : undefined
  const detail = detailOf(body)
  const say = (reason: string) => `${context}: ${reason}${detail ? `: ${detail}` : ''}`
  const options: DiskErrorOptions = {backendCode: code}
  if (status === 401 || status === 403) {
    const reason = status === 401 ? 'the OAuth token was rejected' : 'access denied'
    return new AuthError(say(`${reason} (HTTP ${status})`), {...options, hint: TOKEN_HINT})
  }

  if (status === 507) return new ConflictError(say('no space left on the Disk (HTTP 507)'), 'no-space', options)
  if (RETRYABLE_STATUS.has(status)) {
    const retryAfter = (headers as Record<string, unknown>)['retry-after']
    return new TemporaryError(say(`temporary failure (HTTP ${status})`), {
      ...options,
      retryAfterMs: parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : undefined),
    })
  }

  switch (code) {
    case 'DiskPathDoesntExistsError': {
      return new NotFoundError(say('parent directory not found'), 'dir', options)
    }

    case 'DiskNotFoundError': {
      return new NotFoundError(say('not found'), 'file', options)
    }

    case 'DiskResourceAlreadyExistsError':
    case 'DiskPathPointsToExistentDirectoryError': {
      return new ConflictError(say('destination already exists'), 'exists', {...options, hint: conflictHint})
    }

    default:
  }

  if (status === 404) return new NotFoundError(say('not found (HTTP 404)'), 'file', options)
  if (status === 409) return new ConflictError(say('conflict (HTTP 409)'), 'exists', options)
  if (status === 413) return new ConflictError(say('the file is too large for this Disk (HTTP 413)'), 'no-space', options)
  if (status === 400 || status === 422) return new UsageError(say(`the request was refused (HTTP ${status})`), options)
  return new OperationFailedError(say(`unexpected answer (HTTP ${status})`), options)
}

/**
 * Maps a failure to get any answer at all. Network errors (ECONNRESET,
 * ETIMEDOUT, socket hang up, DNS) are temporary; cancellation and typed
 * errors pass through unchanged.
 */
export function transportError(error: unknown, context: string): unknown {
  if (error instanceof DiskError) return error
  const name = (error as {name?: string})?.name
  if ((error as {__CANCEL__?: boolean})?.__CANCEL__ || name === 'CanceledError' || name === 'AbortError') return error
  const cause = (error as {cause?: unknown})?.cause
  if (cause instanceof DiskError) return cause
  const code = (error as {code?: string})?.code
  const message = error instanceof Error ? error.message : String(error)
  if (code === 'ERR_INVALID_URL' || code === 'ERR_BAD_OPTION_VALUE' || code === 'ERR_BAD_OPTION') {
    return new UsageError(`${context}: ${message}`, {cause: error})
  }

  const what = code && !message.includes(code) ? `${code}: ${message}` : message
  return new TemporaryError(`${context}: network error: ${what}`, {cause: error})
}
