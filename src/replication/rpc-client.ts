import type {Agent} from 'node:http'
import type {AddressInfo} from 'node:net'

import xmlrpc from 'xmlrpc'

import {RpcFault} from './faults.js'

/**
 * The call did not produce an answer: refused, reset, timed out, an HTTP
 * error, or a response we could not parse. Whether the server acted on it is
 * unknown.
 */
export class RpcTransportError extends Error {
  constructor(message: string, options?: {cause?: unknown}) {
    super(message, options)
    this.name = 'RpcTransportError'
  }
}

export interface CallOptions {
  /** Give up after this many milliseconds; default 2000. */
  timeoutMs?: number
  /** Aborts the call early. */
  signal?: AbortSignal
  /** The HTTP agent, so a long-lived caller can reuse and later close its connections. */
  agent?: Agent
}

/**
 * Calls `method(params)` at the XML-RPC endpoint `url` with the `xmlrpc`
 * package's client. Resolves with the result; rejects with `RpcFault` for a
 * fault answer and `RpcTransportError` for everything else.
 */
export function callRpc(url: string, method: string, params: unknown[], options: CallOptions = {}): Promise<unknown> {
  const target = new URL(url)
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 2000), ...(options.signal ? [options.signal] : [])])
  // http.request takes `agent` and `signal`; the xmlrpc client passes its options through to it.
  const client = xmlrpc.createClient({
    host: target.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(target.port || 80),
    path: target.pathname || '/',
    agent: options.agent,
    signal,
  } as Parameters<typeof xmlrpc.createClient>[0])
  return new Promise((resolve, reject) => {
    let settled = false
    const settle = (error: unknown, value?: unknown): void => {
      if (settled) return
      settled = true
      if (!error) resolve(value)
      else if (isFault(error)) reject(new RpcFault(Number(error.faultCode), String(error.faultString ?? '')))
      else {
        const reason = signal.aborted && !options.signal?.aborted ? `timed out after ${options.timeoutMs ?? 2000} ms` : (error as Error).message
        reject(new RpcTransportError(`${method} at ${url}: ${reason}`, {cause: error}))
      }
    }
    try {
      client.methodCall(method, params, (error, value) => settle(error, value))
    } catch (error) {
      settle(error)
    }
  })
}

function isFault(error: unknown): error is {faultCode: unknown; faultString: unknown} {
  return typeof error === 'object' && error !== null && 'faultCode' in error && (error as {faultCode: unknown}).faultCode !== undefined
}

/** `host:port` or a URL, as a URL string with a path (`http://host:port/`). */
export function normalizeUrl(address: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `http://${address}`
  const url = new URL(withScheme)
  if (url.protocol !== 'http:') throw new Error(`only http:// URLs are supported: ${address}`)
  return url.toString()
}

/** The URL a bound HTTP server answers on, e.g. `http://127.0.0.1:7000/`. */
export function httpUrl(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `http://${host}:${address.port}/`
}
