// KV bench: redis-benchmark -t set,get -n 200000 -c 50 -d 100 against our
// router (3 servers, RF=2, started here through the built CLI) and against a
// redis-server started here, in the same run, three runs each alternating
// (best of three for every contender); prints both and the ratios,
// and the CPU per request of the router and each server (Linux /proc).
// Then the floor: the same runs through a skeleton of DESIGN §5's topology
// (bench/lib/kv-skeleton.ts), what any Node router and replicas reach here.
// Never fails on a number. Loopback only.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import net from 'node:net'
import {loadavg, tmpdir} from 'node:os'
import path from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const REQUESTS = Number(process.env.KV_BENCH_REQUESTS ?? 200_000)
const ROUNDS = Number(process.env.KV_BENCH_ROUNDS ?? 3)
const ARGS = ['-t', 'set,get', '-n', String(REQUESTS), '-c', '50', '-d', '100', '--csv']

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0
}

function ensureRedis(): boolean {
  if (have('redis-server') && have('redis-benchmark')) return true
  console.log('installing redis-server and redis-tools with apt-get …')
  spawnSync('apt-get', ['update'], {stdio: 'ignore'})
  const result = spawnSync('apt-get', ['install', '-y', 'redis-server', 'redis-tools'], {stdio: 'ignore', env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}})
  if (result.status !== 0 || !have('redis-benchmark')) {
    console.log('could not install redis-server/redis-tools; skipping the KV comparison')
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

/** requests/s of SET and GET from redis-benchmark --csv. */
function runBenchmark(port: number, tests = 'set,get'): {SET: number; GET: number} {
  const args = ARGS.map((arg) => (arg === 'set,get' ? tests : arg))
  const result = spawnSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), ...args], {encoding: 'utf8', timeout: 600_000})
  const out = {SET: NaN, GET: NaN}
  for (const line of result.stdout.split('\n')) {
    const match = /^"(SET|GET)","([\d.]+)"/.exec(line)
    if (match) out[match[1] as 'SET' | 'GET'] = Number(match[2])
  }
  return out
}

/**
 * CPU time (user + system, in clock ticks of 10 ms) of each process of the
 * cluster, by name (router, server0, …), from Linux's /proc; empty elsewhere.
 * The rates move with other jobs on the machine; CPU per request much less.
 */
function clusterCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>()
  try {
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)) {
      const args = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0')
      const name = args.includes('router') ? 'router' : `server${args[args.indexOf('--number') + 1]}`
      // Fields after the command name, which is in parentheses: utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${child}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(name, Number(fields[11]) + Number(fields[12]))
    }
  } catch {
    out.clear()
  }
  return out
}

/** `router 35.1 us, server0 20.3 us, …` per request between two clusterCpu() readings (ticks of 10 ms). */
function cpuPerRequest(before: Map<string, number>, after: Map<string, number>, requests: number): string {
  const parts: string[] = []
  for (const [name, ticks] of after) {
    const used = ((ticks - (before.get(name) ?? ticks)) * 10_000) / requests
    if (before.has(name)) parts.push(`${name} ${used.toFixed(1)} us`)
  }
  return parts.length > 0 ? parts.join(', ') : 'n/a (no /proc)'
}

async function waitReady(port: number, servers: number): Promise<void> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const info = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'INFO', 'cluster'], {encoding: 'utf8'})
    if (info.stdout?.includes(`servers_up:${servers}`)) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error('cluster did not come up')
}

function startCluster(dataDir: string): Promise<{child: ChildProcess; port: number}> {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'run.js'), 'cluster', 'start', '--servers', '3', '--replicas', '2', '--port', '0', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  return new Promise((resolve, reject) => {
    createInterface({input: child.stdout!}).on('line', (line) => {
      const match = /^router \S+:(\d+)$/.exec(line)
      if (match) resolve({child, port: Number(match[1])})
    })
    child.once('exit', (code) => reject(new Error(`cluster start exited ${code}`)))
  })
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

/** Starts `node bench/lib/kv-skeleton.ts ...args` and resolves once it listens. */
function startSkeleton(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'lib', 'kv-skeleton.ts'), ...args], {cwd: root, stdio: ['ignore', 'pipe', 'inherit']})
  return new Promise((resolve, reject) => {
    createInterface({input: child.stdout!}).on('line', (line) => line === 'ready' && resolve(child))
    child.once('exit', (code) => reject(new Error(`kv-skeleton ${args[0]} exited ${code}`)))
  })
}

/**
 * The floor (bench/lib/kv-skeleton.ts): a router and two replicas in Node
 * with DESIGN §5's topology and none of its semantics, SET acknowledged at the
 * first replica; `mode` is where the replicas keep SETs (LevelDB, or memory).
 * ROUNDS runs alternating with redis-server; prints best of each and the ratio.
 */
async function skeletonRow(redisPort: number, mode: 'level' | 'memory', dir: string): Promise<void> {
  const children: ChildProcess[] = []
  try {
    const replicaPorts = [await freePort(), await freePort()]
    for (const [i, port] of replicaPorts.entries()) children.push(await startSkeleton(['replica', String(port), mode, path.join(dir, `skeleton-${mode}-${i}`)]))
    const routerPort = await freePort()
    children.push(await startSkeleton(['router', String(routerPort), '1', ...replicaPorts.map(String)]))
    const anchor: Array<{SET: number; GET: number}> = []
    const skeleton: Array<{SET: number; GET: number}> = []
    for (let round = 0; round < ROUNDS; round++) {
      anchor.push(runBenchmark(redisPort))
      skeleton.push(runBenchmark(routerPort))
    }

    for (const op of ['SET', 'GET'] as const) {
      const a = Math.max(...anchor.map((run) => run[op]))
      const b = Math.max(...skeleton.map((run) => run[op]))
      const label = mode === 'level' ? 'replicas keep SETs in LevelDB' : 'replicas keep SETs in memory '
      console.log(`${op}  skeleton, ${label}: ${fmt(b)} req/s = ${((b / a) * 100).toFixed(1)}% of redis-server's ${a.toFixed(0)}  [redis ${anchor.map((run) => run[op].toFixed(0)).join('/')}; skeleton ${skeleton.map((run) => run[op].toFixed(0)).join('/')}]`)
    }
  } finally {
    for (const child of children) await stop(child)
  }
}

const fmt = (n: number): string => (Number.isFinite(n) ? n.toFixed(0).padStart(8) : '     n/a')

async function main(): Promise<void> {
  if (!ensureRedis()) return
  if (!existsSync(path.join(root, 'dist', 'commands'))) spawnSync('npm', ['run', 'build'], {cwd: root, stdio: 'inherit'})
  const dir = mkdtempSync(path.join(tmpdir(), 'kv-bench-'))
  let redis: ChildProcess | undefined
  let cluster: ChildProcess | undefined
  try {
    const redisPort = await freePort()
    redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {stdio: 'ignore'})
    const started = await startCluster(path.join(dir, 'cluster'))
    cluster = started.child
    await waitReady(started.port, 3)
    await new Promise((resolve) => setTimeout(resolve, 500))
    console.log(`redis-benchmark ${ARGS.filter((arg) => arg !== '--csv').join(' ')}`)
    // Other jobs on the machine slow both sides; the ratio is what to read, with the load beside it.
    const load = (): string => loadavg().map((n) => n.toFixed(2)).join(' ')
    console.log(`load average before: ${load()}`)
    // Best of three for every contender (the rule for its speed
    // figures), the two alternating. Our first run starts on a fresh cluster
    // and so also pays the JIT warm-up of four Node processes (docs/kv.md):
    // it is printed too.
    const anchorRuns: Array<{SET: number; GET: number}> = []
    const ourRuns: Array<{SET: number; GET: number}> = []
    for (let round = 0; round < ROUNDS; round++) {
      anchorRuns.push(runBenchmark(redisPort))
      ourRuns.push(runBenchmark(started.port))
    }
    console.log(`load average after:  ${load()}`)
    const bestOf = (runs: Array<{SET: number; GET: number}>, op: 'SET' | 'GET'): number => Math.max(...runs.map((run) => (Number.isFinite(run[op]) ? run[op] : 0)))
    const all = (runs: Array<{SET: number; GET: number}>, op: 'SET' | 'GET'): string => runs.map((run) => run[op].toFixed(0)).join('/')
    console.log(`            redis-server   router(3 servers, RF=2)   ratio (best of ${ROUNDS} each)`)
    for (const op of ['SET', 'GET'] as const) {
      const anchor = bestOf(anchorRuns, op)
      const ours = bestOf(ourRuns, op)
      const ratio = ours / anchor
      console.log(
        `${op}  req/s    ${fmt(anchor)}       ${fmt(ours)}                ${Number.isFinite(ratio) && anchor > 0 ? (ratio * 100).toFixed(1) + '%' : 'n/a'}  (target >= 50%)  [redis ${all(anchorRuns, op)}; ours ${all(ourRuns, op)}]`,
      )
    }
    for (const op of ['SET', 'GET'] as const) {
      const ratio = ourRuns[0][op] / anchorRuns[0][op]
      console.log(`${op}  the first runs alone (ours on a fresh cluster): ${fmt(ourRuns[0][op])} req/s = ${Number.isFinite(ratio) ? (ratio * 100).toFixed(1) + '%' : 'n/a'} of redis-server's first run`)
    }
    // Then SET and GET again, each in a run of its own, for the CPU each takes.
    const cpu0 = clusterCpu(cluster.pid!)
    runBenchmark(started.port, 'set')
    const cpu1 = clusterCpu(cluster.pid!)
    runBenchmark(started.port, 'get')
    const cpu2 = clusterCpu(cluster.pid!)
    console.log(`CPU per SET: ${cpuPerRequest(cpu0, cpu1, REQUESTS)}  (a run of -t set alone; load ${load()})`)
    console.log(`CPU per GET: ${cpuPerRequest(cpu1, cpu2, REQUESTS)}  (a run of -t get alone)`)
    // What any Node implementation of §5's topology reaches here: the same
    // benchmark through a skeleton with none of the cluster's semantics.
    await stop(cluster)
    console.log(`the floor: a Node router and 2 replicas that only forward and store (bench/lib/kv-skeleton.ts), best of ${ROUNDS} each, alternating with redis-server:`)
    await skeletonRow(redisPort, 'level', dir)
    await skeletonRow(redisPort, 'memory', dir)
  } finally {
    await stop(cluster)
    await stop(redis)
    rmSync(dir, {recursive: true, force: true})
  }
}

main().catch((error: Error) => console.log(`kv bench did not finish: ${error.message}`))
