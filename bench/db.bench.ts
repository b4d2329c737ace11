// DB bench (DESIGN.md §11): redis-benchmark -t set,get -c 50 -d 100 against
// `db main` alone and with three `db replica`s attached and following, and -t get
// through `db proxy` over those replicas, beside a redis-server started here
// in the same run; prints rates, the ratios, and the replication lag (main
// offset minus the replicas' acknowledged offsets) sampled every 100 ms under
// the SET load. Never fails on a number. Loopback only.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import net from 'node:net'
import os, {tmpdir} from 'node:os'
import path from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'

import {RespClient} from '../src/kv/client.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const REQUESTS = Number(process.env.DB_BENCH_REQUESTS ?? 200_000)
const COMMON = ['-n', String(REQUESTS), '-c', '50', '-d', '100', '--csv']

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0
}

function ensureRedis(): boolean {
  if (have('redis-server') && have('redis-benchmark')) return true
  console.log('installing redis-server and redis-tools with apt-get …')
  spawnSync('apt-get', ['update'], {stdio: 'ignore'})
  const result = spawnSync('apt-get', ['install', '-y', 'redis-server', 'redis-tools'], {stdio: 'ignore', env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}})
  if (result.status !== 0 || !have('redis-benchmark')) {
    console.log('could not install redis-server/redis-tools; skipping the db comparison')
    return false
  }
  return true
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** requests/s per test from redis-benchmark --csv, run without blocking (lag is sampled meanwhile). */
function benchmark(port: number, tests: string): Promise<Record<string, number>> {
  return new Promise((resolve) => {
    const child = spawn('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', tests, ...COMMON], {stdio: ['ignore', 'pipe', 'ignore']})
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.on('close', () => {
      const rates: Record<string, number> = {}
      for (const line of out.split('\n')) {
        const match = /^"(SET|GET)","([\d.]+)"/.exec(line)
        if (match) rates[match[1]] = Number(match[2])
      }
      resolve(rates)
    })
  })
}

/** Starts `disk-client ARGS`; resolves with its port from `listening tcp HOST:PORT`. */
function startDb(args: string[]): Promise<{child: ChildProcess; port: number}> {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'run.js'), ...args], {stdio: ['ignore', 'pipe', 'ignore']})
  return new Promise((resolve, reject) => {
    createInterface({input: child.stdout!}).on('line', (line) => {
      const match = /^listening tcp \S+:(\d+)$/.exec(line)
      if (match) resolve({child, port: Number(match[1])})
    })
    child.once('exit', (code) => reject(new Error(`disk-client ${args.join(' ')} exited ${code}`)))
  })
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

/** The main's offset and each online replica's acknowledged offset. */
async function offsets(main: RespClient): Promise<{offset: number; acks: number[]}> {
  const text = String(await main.callString('INFO', 'replication'))
  const offset = Number(/master_repl_offset:(\d+)/.exec(text)?.[1] ?? 0)
  const acks = [...text.matchAll(/slave\d+:[^\r\n]*state=online,offset=(\d+)/g)].map((m) => Number(m[1]))
  return {offset, acks}
}

const fmt = (n: number | undefined): string => (n !== undefined && Number.isFinite(n) ? n.toFixed(0).padStart(8) : '     n/a')
const pct = (a: number | undefined, b: number | undefined): string => (a && b ? `${((a / b) * 100).toFixed(1)}%` : 'n/a')

async function main(): Promise<void> {
  if (!ensureRedis()) return
  if (!existsSync(path.join(root, 'dist', 'commands', 'db'))) spawnSync('npm', ['run', 'build'], {cwd: root, stdio: 'inherit'})
  const dir = mkdtempSync(path.join(tmpdir(), 'db-bench-'))
  const children: ChildProcess[] = []
  try {
    const redisPort = await freePort()
    children.push(spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {stdio: 'ignore'}))
    const dbMain = await startDb(['db', 'main', '--port', '0', '--data-dir', path.join(dir, 'main'), '--backlog', String(64 * 1024 * 1024)])
    children.push(dbMain.child)
    console.log(`redis-benchmark -t set,get ${COMMON.filter((arg) => arg !== '--csv').join(' ')}`)
    const anchor = await benchmark(redisPort, 'set,get')
    const alone = await benchmark(dbMain.port, 'set,get')
    const replicas = []
    for (let i = 0; i < 3; i++) {
      const replica = await startDb(['db', 'replica', '--port', '0', '--main', `127.0.0.1:${dbMain.port}`, '--data-dir', path.join(dir, `replica${i}`)])
      children.push(replica.child)
      replicas.push(replica)
    }
    const proxy = await startDb(['db', 'proxy', '--port', '0', '--main', `127.0.0.1:${dbMain.port}`, '--replicas', replicas.map((r) => `127.0.0.1:${r.port}`).join(','), '--max-lag-bytes', String(64 * 1024 * 1024)])
    children.push(proxy.child)
    const probe = await RespClient.connect({host: '127.0.0.1', port: dbMain.port})
    for (let tries = 0; (await offsets(probe)).acks.length < 3 && tries < 100; tries++) await new Promise((resolve) => setTimeout(resolve, 100))


    // SET on the main, sampling the replicas' lag every 100 ms
    const lags: number[] = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        const {offset, acks} = await offsets(probe)
        if (acks.length > 0) lags.push(Math.max(...acks.map((ack) => offset - ack)))
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })()
    const ours = await benchmark(dbMain.port, 'set,get')
    sampling = false
    await sampler
    const quietStart = Date.now()
    let caughtUpMs = NaN
    for (;;) {
      const {offset, acks} = await offsets(probe)
      if (acks.length === 3 && acks.every((ack) => ack === offset)) {
        caughtUpMs = Date.now() - quietStart
        break
      }
      if (Date.now() - quietStart > 30_000) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const proxied = await benchmark(proxy.port, 'get')
    const reads = String(await (await RespClient.connect({host: '127.0.0.1', port: proxy.port})).callString('INFO', 'reads'))
    probe.close()

    console.log('              redis-server   db main alone   ratio   db main + 3 replicas   ratio   db proxy (3 replicas)   ratio')
    console.log(`SET  req/s      ${fmt(anchor.SET)}        ${fmt(alone.SET)}  ${pct(alone.SET, anchor.SET).padStart(6)}               ${fmt(ours.SET)}  ${pct(ours.SET, anchor.SET).padStart(6)}`)
    console.log(`GET  req/s      ${fmt(anchor.GET)}        ${fmt(alone.GET)}  ${pct(alone.GET, anchor.GET).padStart(6)}               ${fmt(ours.GET)}  ${pct(ours.GET, anchor.GET).padStart(6)}                ${fmt(proxied.GET)}  ${pct(proxied.GET, anchor.GET).padStart(6)}   (target >= 50%)`)
    console.log(`(${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)}: the main, 3 replicas, the proxy, redis-server and redis-benchmark share them)`)
    const sorted = [...lags].sort((a, b) => a - b)
    const median = sorted.length > 0 ? sorted[Math.floor(sorted.length / 2)] : NaN
    console.log(`replication lag under the SET/GET load on the main (${lags.length} samples, 100 ms apart): median ${median} bytes, max ${sorted.at(-1) ?? NaN} bytes; all 3 replicas acknowledged the last byte ${caughtUpMs} ms after the load stopped (acks are sent once a second)`)
    console.log(`proxy read split: ${reads.split(/\r?\n/).filter((line) => /reads=/.test(line)).map((line) => line.replace(/,state=.*/, '')).join('  ')}`)
  } finally {
    for (const child of children.reverse()) await stop(child)
    rmSync(dir, {recursive: true, force: true})
  }
}

main().catch((error: Error) => console.log(`db bench did not finish: ${error.message}`))
