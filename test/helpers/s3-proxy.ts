// A small HTTP proxy in front of radosgw for the S3 CLI tests: it records
// every request (method, URL, copy source, body bytes) to prove what went
// over the wire, and can fail or stall UploadPart requests.
import http from 'node:http'
import {pipeline} from 'node:stream'
import type {AddressInfo} from 'node:net'

export interface SeenRequest {
  method: string
  url: string
  copySource?: string
  bodyBytes: number
}

export interface S3ProxyOptions {
  /** Answer UploadPart number N with a 500 InternalError. */
  failPart?: number
  /** Hold UploadPart number N and later without an answer until the proxy closes. */
  stallFromPart?: number
}

export class S3Proxy {
  readonly seen: SeenRequest[] = []
  private readonly server: http.Server
  private readonly stalled = new Set<http.ServerResponse>()
  private waiters: Array<() => void> = []
  options: S3ProxyOptions = {}

  constructor(private readonly target: URL) {
    this.server = http.createServer((req, res) => this.handle(req, res))
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return this
  }

  async stop(): Promise<void> {
    for (const res of this.stalled) res.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /** Resolves once a request matching `test` has been seen (checked on every new request). */
  until(test: (request: SeenRequest) => boolean): Promise<void> {
    if (this.seen.some(test)) return Promise.resolve()
    return new Promise((resolve) => {
      const check = (): void => {
        if (!this.seen.some(test)) return
        this.waiters = this.waiters.filter((w) => w !== check)
        resolve()
      }
      this.waiters.push(check)
    })
  }

  bytesSent(): number {
    return this.seen.reduce((sum, r) => sum + r.bodyBytes, 0)
  }

  reset(): void {
    this.seen.length = 0
    this.options = {}
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const record: SeenRequest = {method: req.method!, url: req.url!, bodyBytes: 0}
    const copySource = req.headers['x-amz-copy-source']
    if (typeof copySource === 'string') record.copySource = copySource
    this.seen.push(record)
    for (const waiter of [...this.waiters]) waiter()
    const part = Number(new URL(req.url!, 'http://x').searchParams.get('partNumber') ?? 0)
    if (req.method === 'PUT' && part > 0 && part === this.options.failPart) {
      req.resume()
      req.on('end', () => {
        res.writeHead(500, {'content-type': 'application/xml'})
        res.end('<?xml version="1.0"?><Error><Code>InternalError</Code><Message>injected</Message></Error>')
      })
      return
    }

    if (req.method === 'PUT' && part > 0 && this.options.stallFromPart !== undefined && part >= this.options.stallFromPart) {
      req.resume()
      this.stalled.add(res)
      return
    }

    const upstream = http.request({host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers}, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      // Either side failing or closing early ends the other at once: a reply
      // cut off upstream (radosgw does that now and then, mid-body) closes
      // the client's connection as the gateway's own would, instead of
      // leaving it waiting for bytes that never come; a client that hangs
      // up frees the upstream connection.
      pipeline(answer, res, () => {})
    })
    upstream.on('error', () => res.destroy())
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.on('data', (chunk: Buffer) => (record.bodyBytes += chunk.length))
    pipeline(req, upstream, () => {})
  }
}
