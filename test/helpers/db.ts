// Real processes for the db tests: `disk-client db …` children and real
// redis-server children, each on 127.0.0.1 with a free port and its own folder.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {Redis} from 'ioredis'

import {spawnCli} from './cli.js'

import {freePort} from './net.js'

export {freePort}

/** Checks that redis-server and redis-cli (the oracles) are there; scripts/test-deps.sh installs them before npm test. */
export function ensureRedis(): void {
  const have = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0
  if (!have('redis-server') || !have('redis-cli')) throw new Error('redis-server and redis-cli are needed for these tests: run sh scripts/test-deps.sh')
}

const made: string[] = []

/** A fresh folder under the system's temp folder, removed by removeTempDirs. */
export async function tempDir(prefix = 'disk-client-db-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
  made.push(dir)
  return dir
}

/** Removes the folders tempDir made (call after the processes using them have stopped). */
export async function removeTempDirs(): Promise<void> {
  for (const dir of made.splice(0)) await fs.rm(dir, {recursive: true, force: true})
}


export interface Proc {
  child: ChildProcess
  port: number
  /** Everything the process wrote to stderr (our servers) or its log (redis-server). */
  log: () => string
}

/** Starts `disk-client ARGS` and resolves once it prints `listening tcp HOST:PORT`. */
export function startDb(args: string[]): Promise<Proc> {
  const child = spawnCli(args)
  let out = ''
  let err = ''
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()))
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /listening tcp \S+:(\d+)/.exec(out)
      if (match) resolve({child, port: Number(match[1]), log: () => err})
    })
    child.once('exit', (code) => reject(new Error(`disk-client ${args.join(' ')} exited ${code}: ${err}`)))
  })
}

/** Starts a real redis-server (no persistence) on a free port and waits until it answers. */
export async function startRedis(dir: string, extra: string[] = [], port?: number): Promise<Proc> {
  port ??= await freePort()
  await fs.mkdir(dir, {recursive: true})
  const logFile = path.join(dir, 'redis.log')
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', logFile, ...extra], {stdio: 'ignore'})
  let logText = ''
  const proc: Proc = {child, port, log: () => logText}
  const refresh = async (): Promise<void> => {
    logText = await fs.readFile(logFile, 'utf8').catch(() => logText)
  }
  ;(proc as Proc & {refresh: () => Promise<void>}).refresh = refresh
  proc.log = () => logText
  await waitFor(async () => {
    const client = new Redis({port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null})
    client.on('error', () => undefined)
    try {
      await client.connect()
      return (await client.ping()) === 'PONG'
    } catch {
      return false
    } finally {
      client.disconnect()
    }
  }, 10_000, `redis-server on ${port}`)
  return proc
}

/** The redis-server log of a Proc started by startRedis, read now. */
export async function redisLog(proc: Proc): Promise<string> {
  await (proc as Proc & {refresh?: () => Promise<void>}).refresh?.()
  return proc.log()
}

/** An ioredis client; connection errors surface as rejected commands, not as unhandled events. */
export function client(port: number): Redis {
  const redis = new Redis({port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => null})
  redis.on('error', () => undefined)
  return redis
}

/** An INFO section as key → value. */
export async function info(redis: Redis, section: string): Promise<Record<string, string>> {
  const text = await redis.info(section)
  return Object.fromEntries(
    text
      .split(/\r?\n/)
      .filter((line) => line.includes(':') && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  )
}

/** Polls `check` every 50 ms until it is true; throws after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await Promise.resolve().then(check).catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** SIGKILLs (or SIGTERMs) a child and waits for it to exit. */
export async function stop(proc: Proc | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const child = proc?.child
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise((resolve) => child.once('exit', resolve))
  child.kill(signal)
  await gone
}
