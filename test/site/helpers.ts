import type {ChildProcess} from 'node:child_process'
import dgram from 'node:dgram'
import {mkdtempSync, rmSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {spawnCli} from '../helpers/cli.js'

/** One of our site servers, started through bin/run.js. */
export interface SiteProc {
  child: ChildProcess
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  url: string
  port: number
  args: string[]
  stderr(): string
  /** The JSON log lines so far. */
  events(): Array<Record<string, unknown>>
}

/** Waits until `check` returns a truthy value (polled), or fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value as NonNullable<T>
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await sleep(everyMs)
  }
}

/** A port free for both TCP and UDP on 127.0.0.1 (the central needs both with one number). */
export async function freePort(): Promise<number> {
  for (;;) {
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as net.AddressInfo).port
    const udp = dgram.createSocket('udp4')
    const ok = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false))
      udp.bind(port, '127.0.0.1', () => resolve(true))
    })
    await new Promise<void>((resolve) => server.close(() => resolve()))
    if (ok) await new Promise<void>((resolve) => udp.close(() => resolve()))
    else udp.close()
    if (ok) return port
  }
}

export async function getJson<T = Record<string, unknown>>(url: string, timeoutMs = 10_000): Promise<T> {
  const response = await fetch(url, {signal: AbortSignal.timeout(timeoutMs)})
  const body = (await response.json()) as T
  if (!response.ok) throw Object.assign(new Error(`GET ${url}: ${response.status} ${JSON.stringify(body)}`), {status: response.status, body})
  return body
}

export async function sendJson(method: string, url: string, body: unknown, timeoutMs = 10_000): Promise<{status: number; body: Record<string, unknown>}> {
  const response = await fetch(url, {
    method,
    headers: {'content-type': 'application/json'},
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  })
  return {status: response.status, body: (await response.json()) as Record<string, unknown>}
}

interface AllDocs {
  rows: Array<{id: string; value: {rev: string; deleted?: boolean}}>
}

/** id → winning revision of every live document at a server. */
export async function revsOf(url: string): Promise<Map<string, string>> {
  const all = await getJson<AllDocs>(`${url}/records/_all_docs`)
  return new Map(all.rows.map((row) => [row.id, row.value.rev]))
}

/**
 * Starts and tracks site processes and temporary folders; `cleanup()` resumes
 * stopped processes, kills every one and removes the folders.
 */
export class SiteHarness {
  private readonly procs = new Set<ChildProcess>()
  private readonly dirs: string[] = []

  dir(prefix = 'site-'): string {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    this.dirs.push(dir)
    return dir
  }

  async start(args: string[]): Promise<SiteProc> {
    const child = spawnCli(args)
    this.procs.add(child)
    child.once('exit', () => this.procs.delete(child))
    let stdout = ''
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line from ${args.join(' ')}; stderr: ${stderr}`)), 30_000)
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk
        const match = /^listening http 127\.0\.0\.1:(\d+)$/m.exec(stdout)
        if (match) {
          clearTimeout(timer)
          resolve(Number(match[1]))
        }
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${args.join(' ')} exited ${code ?? signal}; stderr: ${stderr}`))
      })
    })
    const events = (): Array<Record<string, unknown>> =>
      stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
    return {child, url: `http://127.0.0.1:${port}`, port, args, stderr: () => stderr, events}
  }

  local(name: string, central: string, options: {dataDir?: string; port?: number; generateMs?: number; extra?: string[]} = {}): Promise<SiteProc> {
    return this.start([
      'site', 'local', '--name', name, '--port', String(options.port ?? 0), '--data-dir', options.dataDir ?? this.dir(`site-${name}-`),
      '--central', central, '--generate-ms', String(options.generateMs ?? 0), ...(options.extra ?? []),
    ])
  }

  central(port: number, locals: Record<string, string>, extra: string[] = [], dataDir = this.dir('site-central-')): Promise<SiteProc> {
    return this.start([
      'site', 'central', '--port', String(port), '--data-dir', dataDir,
      ...Object.entries(locals).flatMap(([name, url]) => ['--local', `${name}=${url}`]), ...extra,
    ])
  }

  /** SIGKILL and wait for the exit. */
  async kill(proc: SiteProc, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()))
    proc.child.kill(signal)
    await exited
  }

  async cleanup(): Promise<void> {
    await Promise.all(
      [...this.procs].map(async (child) => {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
        child.kill('SIGCONT')
        child.kill('SIGKILL')
        await exited
      }),
    )
    for (const dir of this.dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
  }
}
