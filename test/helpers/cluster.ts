// A real cluster for tests: a router and N servers, each its own
// `disk-client cluster router|server` process on 127.0.0.1, port 0.
import type {ChildProcess} from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {RespClient} from '../../src/kv/client.js'
import {spawnCli} from './cli.js'

/** Resolves with the address from the child's first `listening tcp HOST:PORT` line. */
function listeningAddress(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const match = /listening tcp (\S+)/.exec(out)
      if (match) {
        child.stdout?.off('data', onData)
        resolve(match[1])
      }
    }

    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()))
    child.once('exit', (code) => reject(new Error(`${what} exited ${code} before listening: ${err}`)))
  })
}

export interface TestClusterOptions {
  servers?: number
  replicas?: number
  antiEntropyMs?: number
}

export class TestCluster {
  router!: ChildProcess
  routerAddress = ''
  readonly servers: Array<ChildProcess | undefined> = []
  readonly serverAddresses: string[] = []
  private constructor(
    readonly dataDir: string,
    readonly options: Required<TestClusterOptions>,
  ) {}

  static async start(options: TestClusterOptions = {}): Promise<TestCluster> {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-cluster-'))
    const cluster = new TestCluster(dataDir, {servers: 3, replicas: 2, antiEntropyMs: 10_000, ...options})
    await cluster.startRouter()
    for (let i = 0; i < cluster.options.servers; i++) await cluster.startServer(i)
    await cluster.waitUntilUp(cluster.options.servers)
    return cluster
  }

  /** Starts the router: on a free port the first time, on its old port (and data) after killRouter. */
  async startRouter(): Promise<void> {
    this.router = spawnCli([
      'cluster', 'router', '--port', this.routerAddress.split(':')[1] ?? '0', '--servers', String(this.options.servers),
      '--replicas', String(this.options.replicas), '--data-dir', path.join(this.dataDir, 'router'),
      '--anti-entropy-ms', String(this.options.antiEntropyMs),
    ])
    this.routerAddress = await listeningAddress(this.router, 'router')
  }

  /** SIGKILLs the router and waits for it to be gone. */
  async killRouter(): Promise<void> {
    const child = this.router
    if (child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await gone
  }

  async startServer(index: number): Promise<void> {
    const child = spawnCli([
      'cluster', 'server', '--router', this.routerAddress, '--number', String(index),
      '--port', String(this.serverAddresses[index]?.split(':')[1] ?? 0), '--data-dir', path.join(this.dataDir, `server${index}`),
    ])
    this.servers[index] = child
    this.serverAddresses[index] = await listeningAddress(child, `server ${index}`)
  }

  /** SIGKILLs server `index` and waits for it to be gone. */
  async killServer(index: number): Promise<void> {
    const child = this.servers[index]
    if (!child || child.exitCode !== null) return
    const gone = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await gone
    this.servers[index] = undefined
  }

  /** The router's `# Cluster` section as key → value. */
  async info(): Promise<Record<string, string>> {
    const [host, port] = this.routerAddress.split(':')
    const client = await RespClient.connect({host, port: Number(port)})
    try {
      const text = String(await client.callString('INFO', 'cluster'))
      return Object.fromEntries(text.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]))
    } finally {
      client.close()
    }
  }

  /** The router's `# Stats` section: piece bytes received from and sent to clients. */
  async stats(): Promise<{in: number; out: number; antiEntropyRounds: number; antiEntropyKeysCopied: number}> {
    const [host, port] = this.routerAddress.split(':')
    const client = await RespClient.connect({host, port: Number(port)})
    try {
      const text = String(await client.callString('INFO', 'stats'))
      const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN)
      return {
        in: field('piece_bytes_in'),
        out: field('piece_bytes_out'),
        antiEntropyRounds: field('anti_entropy_rounds'),
        antiEntropyKeysCopied: field('anti_entropy_keys_copied'),
      }
    } finally {
      client.close()
    }
  }

  /** Live keys of database `db` on server `index`, read straight from it. */
  async serverKeys(index: number, db: number): Promise<string[]> {
    return [...(await this.serverVersions(index, db)).keys()]
  }

  /** The live keys of database `db` on server `index`, with the version each holds. */
  async serverVersions(index: number, db: number): Promise<Map<string, number>> {
    const [host, port] = this.serverAddresses[index].split(':')
    const client = await RespClient.connect({host, port: Number(port)})
    try {
      const reply = (await client.call('XSCAN', `${db}:`, '*')) as Array<Buffer | number>
      const keys = new Map<string, number>()
      for (let i = 0; i + 2 < reply.length; i += 3) if (Number(reply[i + 2]) === 0) keys.set(String(reply[i]), Number(reply[i + 1]))
      return keys
    } finally {
      client.close()
    }
  }

  async waitUntilUp(count: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const info = await this.info().catch(() => ({}) as Record<string, string>)
      if (Number(info.servers_up) === count) return
      if (Date.now() > deadline) throw new Error(`cluster: ${info.servers_up} servers up, wanted ${count}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  async stop(): Promise<void> {
    for (const child of [...this.servers, this.router]) {
      if (child && child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGKILL')
        await gone
      }
    }

    await fs.rm(this.dataDir, {recursive: true, force: true})
  }
}
