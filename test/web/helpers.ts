// Starts a real `disk-client web` process for a test, signs in the way a
// browser does (token → cookie) and makes raw HTTP requests to it.
import type {ChildProcess} from 'node:child_process'
import {request as httpRequest, type IncomingHttpHeaders} from 'node:http'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type {Readable} from 'node:stream'

import {spawnCli} from '../helpers/cli.js'

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
}

export interface WebProcess {
  child: ChildProcess
  /** The URL printed on the first line, with its token. */
  url: string
  /** http://HOST:PORT */
  origin: string
  host: string
  port: number
  /** `NAME=VALUE` once signed in. */
  cookie: string
  csrf: string
  env: NodeJS.ProcessEnv
  stderr: () => string
  request(method: string, pathAndQuery: string, options?: {headers?: Record<string, string>; body?: Buffer | string | Readable}): Promise<RawResponse>
  /** A request with the session cookie and, for state-changing methods, the CSRF header. */
  authed(method: string, pathAndQuery: string, options?: {headers?: Record<string, string>; body?: Buffer | string | Readable}): Promise<RawResponse>
  stop(): Promise<void>
}

/** Temporary folders for the local backend and the embedded cluster, removed by the returned function. */
export async function tempDirs(): Promise<{localRoot: string; dataDir: string; work: string; remove: () => Promise<void>}> {
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-web-'))
  const dirs = {localRoot: path.join(base, 'local'), dataDir: path.join(base, 'cluster'), work: path.join(base, 'work')}
  await Promise.all(Object.values(dirs).map((dir) => fs.mkdir(dir, {recursive: true})))
  return {...dirs, remove: () => fs.rm(base, {recursive: true, force: true})}
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    const onData = (chunk: Buffer): void => {
      out += chunk.toString()
      const end = out.indexOf('\n')
      if (end >= 0) {
        child.stdout?.off('data', onData)
        resolve(out.slice(0, end))
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()))
    child.once('exit', (code) => reject(new Error(`disk-client web exited ${code} before its first line: ${err}`)))
  })
}

export function rawRequest(
  port: number,
  method: string,
  pathAndQuery: string,
  options: {headers?: Record<string, string>; body?: Buffer | string | Readable} = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({host: '127.0.0.1', port, method, path: pathAndQuery, headers: options.headers}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8')})
      })
    })
    req.on('error', reject)
    const body = options.body
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) req.end(body)
    else body.pipe(req)
  })
}

/** Starts `disk-client web --port 0 --no-open` with the given environment and signs in. */
export async function startWeb(env: NodeJS.ProcessEnv, args: string[] = []): Promise<WebProcess> {
  const child = spawnCli(['web', '--port', '0', '--no-open', ...args], {env})
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const line = await firstLine(child)
  const match = /^web console: (http:\/\/([\d.]+):(\d+))\/\?token=([\w-]+)$/.exec(line)
  if (!match) throw new Error(`unexpected first line: ${line}`)
  const [, origin, host, port] = match
  const web: WebProcess = {
    child,
    url: line.slice('web console: '.length),
    origin,
    host,
    port: Number(port),
    cookie: '',
    csrf: '',
    env,
    stderr: () => stderr,
    request: (method, pathAndQuery, options = {}) =>
      rawRequest(Number(port), method, pathAndQuery, {...options, headers: {Host: `${host}:${port}`, ...options.headers}}),
    authed: (method, pathAndQuery, options = {}) =>
      web.request(method, pathAndQuery, {...options, headers: {Cookie: web.cookie, 'X-CSRF-Token': web.csrf, ...options.headers}}),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await gone
    },
  }
  const login = await web.request('GET', new URL(web.url).pathname + new URL(web.url).search)
  const setCookie = login.headers['set-cookie']?.[0] ?? ''
  web.cookie = setCookie.split(';')[0]
  const home = await web.request('GET', '/', {headers: {Cookie: web.cookie}})
  web.csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(home.text)?.[1] ?? ''
  return web
}

/** A deterministic byte stream (xorshift32 from `seed`), `size` bytes in 1 MiB chunks. */
export function* seededChunks(size: number, seed: number): Generator<Buffer> {
  let state = seed >>> 0 || 1
  for (let left = size; left > 0; ) {
    const chunk = Buffer.allocUnsafe(Math.min(left, 1 << 20))
    for (let i = 0; i + 4 <= chunk.length; i += 4) {
      state ^= state << 13
      state >>>= 0
      state ^= state >>> 17
      state ^= state << 5
      state >>>= 0
      chunk.writeUInt32LE(state, i)
    }
    for (let i = chunk.length - (chunk.length % 4); i < chunk.length; i++) chunk[i] = i & 0xff
    left -= chunk.length
    yield chunk
  }
}

/** The peak resident set (VmHWM) of a process, in bytes. */
export async function peakRss(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8')
  const match = /^VmHWM:\s+(\d+) kB/m.exec(status)
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}
