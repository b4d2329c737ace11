// Shared helpers of the torrent tests: seeded data, our CLI's servers,
// aria2c and Transmission as real processes, each peer on its own 127.0.0.N.
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {createCipheriv, createHash} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {once} from 'node:events'

import {spawnCli} from '../helpers/cli.js'

/** Every child started here; `killAll` in after hooks. */
const children = new Map<ChildProcess, 'test' | 'suite'>()

/** Tracks a child: 'test' children die in `killAll('test')` (afterEach), 'suite' ones only in `killAll()`. */
export function track(child: ChildProcess, scope: 'test' | 'suite' = 'test'): ChildProcess {
  children.set(child, scope)
  child.once('exit', () => children.delete(child))
  return child
}

export async function killAll(scope?: 'test'): Promise<void> {
  const waits: Array<Promise<unknown>> = []
  for (const [child, childScope] of children) {
    if (scope && childScope !== scope) continue
    if (child.exitCode === null && child.signalCode === null) {
      waits.push(once(child, 'exit'))
      child.kill('SIGKILL')
    }
    children.delete(child)
  }
  await Promise.all(waits)
}

/** Deterministic pseudo-random bytes: AES-128-CTR over zeros, keyed by the seed. */
export function prngStream(seed: string): (n: number) => Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16)
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  return (n) => cipher.update(Buffer.alloc(n))
}

export async function makeFile(file: string, size: number, seed: string): Promise<string> {
  await fs.mkdir(path.dirname(file), {recursive: true})
  const next = prngStream(seed)
  const out = createWriteStream(file)
  let left = size
  while (left > 0) {
    const n = Math.min(left, 1 << 20)
    if (!out.write(next(n))) await once(out, 'drain')
    left -= n
  }
  out.end()
  await once(out, 'close')
  return file
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  const handle = await fs.open(file, 'r')
  try {
    for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer)
  } finally {
    await handle.close().catch(() => {})
  }
  return hash.digest('hex')
}

export async function tempDir(prefix = 'disk-client-torrent-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix))
}

/** Polls until `check` is truthy; rejects with `what` after `timeoutMs`. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** A port free on `host` now (for programs that cannot pick their own, like aria2c). */
export async function freePort(host: string): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  const {port} = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Loopback addresses handed out one per peer: 127.0.0.10, .11, … (per test process). */
let nextHost = 10 + (process.pid % 40) * 5
export function nextLoopback(): string {
  nextHost = nextHost >= 250 ? 10 : nextHost + 1
  return `127.0.0.${nextHost}`
}

export interface Server {
  child: ChildProcess
  /** The first stdout line. */
  line: string
  stdout: () => string
  stderr: () => string
}

/** Starts `disk-client ARGS` and waits for its first stdout line. */
export async function startCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000, scope: 'test' | 'suite' = 'test'): Promise<Server> {
  const child = track(spawnCli(args, {env}), scope)
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`disk-client ${args.join(' ')}: no first line in ${timeoutMs} ms; stderr: ${err}`)), timeoutMs)
    const onData = (): void => {
      const end = out.indexOf('\n')
      if (end >= 0) {
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        resolve(out.slice(0, end))
      }
    }
    child.stdout!.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`disk-client ${args.join(' ')} exited ${code} before its first line: ${err}`))
    })
  })
  return {child, line, stdout: () => out, stderr: () => err}
}

export interface Tracker extends Server {
  announce: string
  base: string
}

export async function startTracker(dataDir: string, interval = 2): Promise<Tracker> {
  const server = await startCli(['torrent', 'tracker', '--host', '127.0.0.1', '-p', '0', '--interval', String(interval), '--data-dir', dataDir], {}, 60_000, 'suite')
  const match = /(http:\/\/\S+\/announce)/.exec(server.line)
  if (!match) throw new Error(`tracker printed ${server.line}`)
  return {...server, announce: match[1], base: new URL(match[1]).origin}
}

/** Our seeder on its own address; resolves once it serves (after the hash check). */
export async function startSeed(torrent: string, data: string, options: {host?: string; extra?: string[]; env?: NodeJS.ProcessEnv} = {}): Promise<Server & {host: string; port: number}> {
  const host = options.host ?? nextLoopback()
  const server = await startCli(['torrent', 'seed', torrent, '--data', data, '--host', host, '-p', '0', ...(options.extra ?? [])], options.env)
  const match = /^seeding (\S+):(\d+) /.exec(server.line)
  if (!match) throw new Error(`seed printed ${server.line}`)
  return {...server, host: match[1], port: Number(match[2])}
}

/** Makes a .torrent with our `torrent create`. */
export async function createTorrent(source: string, output: string, tracker: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const {runCli} = await import('../helpers/cli.js')
  const result = await runCli(['torrent', 'create', source, '-o', output, '--tracker', tracker, ...extra], {env})
  if (result.code !== 0) throw new Error(`torrent create failed: ${result.stderr}`)
  return output
}

export function haveProgram(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0
}

const ARIA_COMMON = [
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=false',
  '--disable-ipv6=true',
  '--summary-interval=0',
  '--console-log-level=warn',
  '--file-allocation=none',
  '--bt-stop-timeout=0',
  '--bt-tracker-connect-timeout=5',
  '--bt-tracker-timeout=5',
  '--check-certificate=false',
]

export interface Aria extends Server {
  host: string
  port: number
  exited: Promise<number | null>
}

/** aria2c on its own loopback address: a seeder (`-V` checks the data in `dir`) or a leecher that exits when done. */
export async function startAria(torrent: string, dir: string, mode: 'seed' | 'get', options: {host?: string; extra?: string[]} = {}): Promise<Aria> {
  const host = options.host ?? nextLoopback()
  const port = await freePort(host)
  const args = [
    ...ARIA_COMMON,
    `--dir=${dir}`,
    `--listen-port=${port}`,
    `--interface=${host}`,
    ...(mode === 'seed' ? ['-V', '--seed-ratio=0.0'] : ['--seed-time=0']),
    ...(options.extra ?? []),
    torrent,
  ]
  const child = track(spawn('aria2c', args, {stdio: ['ignore', 'pipe', 'pipe']}))
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  if (mode === 'seed') {
    // Seeding once it listens on its port (after checking the data).
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`aria2c exited ${child.exitCode}: ${out}${err}`)
        return canConnect(host, port)
      },
      `aria2c seeder on ${host}:${port}`,
      60_000,
      200,
    )
  }
  return {child, line: '', stdout: () => out, stderr: () => err, host, port, exited}
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({host, port})
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Parses the --json output of a command (the whole stdout). */
export function parseJson<T>(stdout: string): T {
  return JSON.parse(stdout) as T
}

export interface GetJson {
  infoHash: string
  name: string
  path: string
  size: number
  fetched: number
  resumed: number
  wasted: number
  peers: Array<{address: string; downloaded: number; uploaded: number; client?: string}>
  banned: Array<{host: string; reason: string}>
}
