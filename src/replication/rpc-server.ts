import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {PassThrough} from 'node:stream'

import Deserializer from 'xmlrpc/lib/deserializer.js'
import {serializeFault, serializeMethodResponse} from 'xmlrpc/lib/serializer.js'

import {FaultCode, RpcFault, xmlSafe} from './faults.js'

/** A method: takes the positional params, returns (or resolves to) the result. Throw `RpcFault` for a fault. */
export type RpcHandler = (params: unknown[]) => unknown

export interface RpcServerOptions {
  /** Address to bind; default 127.0.0.1. */
  host?: string
  /** Port to bind; 0 (the default) picks a free one. */
  port?: number
  /** The methods, by name. */
  methods: Record<string, RpcHandler>
  /** Where unexpected handler errors are reported; default: nowhere. */
  log?: (line: string) => void
  /** Largest request body accepted, in bytes; default 64 MiB. */
  maxBodyBytes?: number
}

/** The paths that answer XML-RPC; anything else is an HTTP 404. */
const RPC_PATHS = new Set(['/', '/RPC2'])
const DEFAULT_MAX_BODY = 64 * 1024 * 1024

/**
 * An XML-RPC server over HTTP, using the `xmlrpc` package's own parser and
 * serializer. We do not use `xmlrpc.createServer` itself because it answers an
 * unknown method or an unparsable body with a bare HTTP 404, serves every
 * path, and dispatches through EventEmitter names; here every request to `/`
 * or `/RPC2` gets a proper XML-RPC response or fault, and nothing a client
 * sends can throw out of the request handler.
 */
export class RpcServer {
  private readonly methods: Map<string, RpcHandler>
  private readonly http: http.Server
  private readonly log: (line: string) => void
  private readonly maxBodyBytes: number

  constructor(private readonly options: RpcServerOptions) {
    this.methods = new Map(Object.entries(options.methods))
    this.methods.set('system.listMethods', () => [...this.methods.keys()].sort())
    this.log = options.log ?? (() => {})
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY
    this.http = http.createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        this.log(`xmlrpc: request failed: ${(error as Error).message}`)
        response.destroy()
      })
    })
    this.http.on('clientError', (_error, socket) => socket.destroy())
  }

  /** Binds and resolves with the bound address. */
  async start(): Promise<AddressInfo> {
    const {host = '127.0.0.1', port = 0} = this.options
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject)
      this.http.listen(port, host, () => {
        this.http.off('error', reject)
        resolve()
      })
    })
    return this.address()
  }

  address(): AddressInfo {
    return this.http.address() as AddressInfo
  }

  /** Stops listening and closes every connection, idle or not. */
  async stop(): Promise<void> {
    if (!this.http.listening) return
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()))
    this.http.closeAllConnections()
    await closed
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0]
    if (!RPC_PATHS.has(path)) return plain(response, 404, 'Not Found: XML-RPC is served on / and /RPC2\n')
    if (request.method !== 'POST') {
      response.setHeader('Allow', 'POST')
      return plain(response, 405, 'Method Not Allowed: XML-RPC takes POST\n')
    }
    const body = await readBody(request, this.maxBodyBytes)
    if (body === undefined) return plain(response, 413, 'Payload Too Large\n', true)
    const xml = await this.dispatch(body)
    response.writeHead(200, {'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(xml)})
    response.end(xml)
  }

  /** One request body in, one methodResponse (a value or a fault) out. */
  private async dispatch(body: Buffer): Promise<string> {
    try {
      const {methodName, params} = await parseCall(body)
      const handler = this.methods.get(methodName)
      if (!handler) throw new RpcFault(FaultCode.METHOD_NOT_FOUND, `method not found: ${methodName}`)
      const result = await handler(params)
      return serializeMethodResponse(result ?? '')
    } catch (error) {
      if (error instanceof RpcFault) return fault(error.faultCode, error.faultString)
      this.log(`xmlrpc: handler error: ${(error as Error)?.stack ?? String(error)}`)
      return fault(FaultCode.INTERNAL, `internal error: ${(error as Error)?.message ?? error}`)
    }
  }
}

function fault(faultCode: number, faultString: string): string {
  return serializeFault({faultCode, faultString: xmlSafe(faultString)})
}

function plain(response: http.ServerResponse, status: number, text: string, close = false): void {
  response.writeHead(status, {'Content-Type': 'text/plain', ...(close ? {Connection: 'close'} : {})})
  response.end(text)
}

/** The whole body, or undefined once it passes `limit` bytes. */
function readBody(request: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    request.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        request.removeAllListeners('data')
        request.resume()
        resolve(undefined)
      } else chunks.push(chunk)
    })
    request.on('end', () => resolve(Buffer.concat(chunks)))
    request.on('error', reject)
  })
}

/** Parses a methodCall; a malformed one becomes a parse-error fault (-32700). */
function parseCall(body: Buffer): Promise<{methodName: string; params: unknown[]}> {
  return new Promise((resolve, reject) => {
    let settled = false
    const stream = new PassThrough()
    new Deserializer().deserializeMethodCall(stream, (error, methodName, params) => {
      if (settled) return
      settled = true
      if (error || typeof methodName !== 'string') {
        reject(new RpcFault(FaultCode.PARSE_ERROR, `parse error: ${error?.message ?? 'not a methodCall'}`))
      } else resolve({methodName, params: Array.isArray(params) ? params : []})
    })
    stream.end(body)
  })
}
