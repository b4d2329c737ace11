/** A small JSON client for a CouchDB-protocol database, every request with its own timeout. */
import {CouchError} from './errors.js'

export interface CouchClientOptions {
  /** The database URL, e.g. `http://127.0.0.1:5984/records`. */
  url: string
  /** Per-request timeout in milliseconds. */
  timeoutMs: number
  /** Aborts every request (the server is stopping). */
  signal?: AbortSignal
}

export class CouchClient {
  readonly url: string

  constructor(private readonly options: CouchClientOptions) {
    this.url = options.url.replace(/\/+$/, '')
  }

  async request<T>(method: string, path: string, body?: unknown, timeoutMs = this.options.timeoutMs): Promise<T> {
    const signals = [AbortSignal.timeout(timeoutMs)]
    if (this.options.signal) signals.push(this.options.signal)
    const target = path === '' ? this.url : `${this.url}/${path}`
    let response: Response
    try {
      response = await fetch(target, {
        method,
        headers: body === undefined ? {accept: 'application/json'} : {accept: 'application/json', 'content-type': 'application/json'},
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any(signals),
      })
    } catch (error) {
      const cause = (error as Error & {cause?: Error}).cause
      const why = (error as Error).name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : (cause?.message ?? (error as Error).message)
      throw new Error(`${method} ${target}: ${why}`)
    }
    const text = await response.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      throw new Error(`${method} ${target}: HTTP ${response.status}, not JSON`)
    }
    if (!response.ok) {
      const e = json as {error?: string; reason?: string}
      throw new CouchError(response.status, e.error ?? 'unknown_error', e.reason ?? text.slice(0, 200))
    }
    return json as T
  }

  get<T>(path: string, timeoutMs?: number): Promise<T> {
    return this.request<T>('GET', path, undefined, timeoutMs)
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body)
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body)
  }

  /** A `_local` document, or undefined when there is none. */
  async getLocal<T>(id: string): Promise<T | undefined> {
    try {
      return await this.get<T>(`_local/${encodeURIComponent(id)}`)
    } catch (error) {
      if (error instanceof CouchError && error.status === 404) return undefined
      throw error
    }
  }
}
