import type {ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {createInterface} from 'node:readline'

import {Redis} from 'ioredis'

import {spawnCli} from '../helpers/cli.js'
import {parseClusterInfo, type ClusterStatus} from '../../src/kv/status.js'

/** Polls `check` every `everyMs` until it returns truthy; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (${(last as Error).message})` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** Spawns `disk-client ARGS` and resolves once it prints `listening tcp HOST:PORT`. */
export function spawnListening(args: string[]): Promise<{child: ChildProcess; port: number; stderr: () => string}> {
  const child = spawnCli(args)
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line from ${args.join(' ')}: ${stderr}`)), 20_000)
    createInterface({input: child.stdout!}).on('line', (line) => {
      const match = /^listening tcp \S+:(\d+)$/.exec(line)
      if (match) {
        clearTimeout(timer)
        resolve({child, port: Number(match[1]), stderr: () => stderr})
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${args.join(' ')} exited ${code ?? signal}: ${stderr}`))
    })
  })
}

export function killAndWait(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill(signal)
  })
}

export interface ClusterOptions {
  servers?: number
  replicas?: number
  antiEntropyMs?: number
}

/** A router and N servers as real processes of the built CLI, on 127.0.0.1. */
export class TestCluster {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'kv-test-'))
  readonly servers: Array<ChildProcess | undefined> = []
  router: ChildProcess | undefined
  routerPort = 0
  private readonly clients: Redis[] = []

  constructor(readonly options: ClusterOptions = {}) {}

  get count(): number {
    return this.options.servers ?? 3
  }

  serverDir(i: number): string {
    return path.join(this.dir, `server${i}`)
  }

  async start(): Promise<void> {
    await this.startRouter()
    await Promise.all(Array.from({length: this.count}, (_, i) => this.startServer(i)))
    await waitFor('all servers up', async () => (await this.info()).servers_up === this.count)
  }

  async startRouter(): Promise<void> {
    const args = ['cluster', 'router', '--port', String(this.routerPort), '--servers', String(this.count)]
    args.push('--replicas', String(this.options.replicas ?? 2), '--data-dir', path.join(this.dir, 'router'))
    args.push('--anti-entropy-ms', String(this.options.antiEntropyMs ?? 0), '--heartbeat-timeout-ms', '2500')
    const {child, port} = await spawnListening(args)
    this.router = child
    this.routerPort = port
  }

  async startServer(i: number): Promise<number> {
    const args = ['cluster', 'server', '--router', `127.0.0.1:${this.routerPort}`, '--number', String(i), '--port', '0', '--data-dir', this.serverDir(i)]
    const {child, port} = await spawnListening(args)
    this.servers[i] = child
    return port
  }

  async killServer(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await killAndWait(this.servers[i], signal)
    this.servers[i] = undefined
  }

  async killRouter(): Promise<void> {
    await killAndWait(this.router)
    this.router = undefined
  }

  /** A new ioredis client on the router (closed by stop()). */
  redis(db = 0): Redis {
    const client = new Redis({host: '127.0.0.1', port: this.routerPort, db, lazyConnect: false, maxRetriesPerRequest: 0, enableOfflineQueue: true})
    client.on('error', () => undefined)
    this.clients.push(client)
    return client
  }

  async info(): Promise<ClusterStatus> {
    const client = new Redis({host: '127.0.0.1', port: this.routerPort, maxRetriesPerRequest: 0, retryStrategy: () => null})
    client.on('error', () => undefined)
    try {
      return parseClusterInfo(await client.info('cluster'))
    } finally {
      client.disconnect()
    }
  }

  /** Waits until the router sees exactly `up` servers up (state), and returns the view. */
  waitUp(up: number, timeoutMs = 15_000): Promise<ClusterStatus> {
    return waitFor<ClusterStatus>(`${up} servers up`, async () => {
      const info = await this.info()
      return (info.servers_up === up ? info : null) as ClusterStatus
    }, timeoutMs)
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.disconnect()
    await Promise.all([...this.servers.map((child) => killAndWait(child)), killAndWait(this.router)])
    rmSync(this.dir, {recursive: true, force: true})
  }
}
