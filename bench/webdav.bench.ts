// Issue #16: 256 MiB up (PUT) and down (GET) with the same client (curl)
// through `disk-client serve webdav` and through Apache httpd with mod_dav,
// side by side in one run, rounds alternating; medians and ratios. Both
// servers keep the file on the local disk (serve webdav over the local
// backend); a third row serves the embedded cluster. Target: serve webdav
// >= 100% of Apache both ways (the curl -o FILE rows). Each GET row also
// shows curl's own CPU (user+sys, GNU time) and the server's CPU per GET
// (/proc/PID/stat, Apache's workers included), and a last pair of rows
// GETs into /dev/null: the server's own rate, without the client's disk.
// The servers' order is reversed every other round, and dirty pages are
// written out (sync) before each measured PUT and GET. Never fails on a number.
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {apacheDav, stopApache} from '../test/helpers/apache.js'
import {mbps, measure, type Measured} from './lib/measure.js'

const SIZE = 256 << 20
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-webdav-'))

function serve(env: NodeJS.ProcessEnv, args: string[]): Promise<{child: ChildProcess; url: string}> {
  const child = spawn(process.execPath, [bin, 'serve', 'webdav', '-p', '0', '--user', 'u', '--pass', 'p', ...args], {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'inherit']})
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /^webdav: (\S+)$/m.exec(out)
      if (match) resolve({child, url: match[1]})
    })
    child.once('exit', (code) => reject(new Error(`serve webdav exited ${code}`)))
  })
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** CPU seconds (user + system) of a process and, when `children`, of the processes it started (Apache's workers). */
async function cpuSeconds(pid: number | undefined, children = false): Promise<number> {
  if (!pid) return Number.NaN
  const ticks = async (id: number) => {
    const stat = await fs.readFile(`/proc/${id}/stat`, 'utf8').catch(() => '')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return {parent: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12])}
  }
  let total = (await ticks(pid)).ticks
  if (children) {
    for (const name of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(name)) continue
      const other = await ticks(Number(name))
      if (other.parent === pid) total += other.ticks
    }
  }
  return total / 100
}

/**
 * Writes every dirty page out before a measured transfer, so that none
 * starts while the kernel still writes back what the one before left (an
 * Apache PUT is not fsync'd: its 256 MiB would be written back during
 * whatever ran next). The slow later rounds seen before (~300 against
 * ~1,500 MB/s) came from files kept across rounds, not from this: see the
 * DELETE after each round below.
 */
const settle = () => execFileSync('sync')

const cpuOf = (m: Measured) => (m.userSeconds ?? Number.NaN) + (m.systemSeconds ?? Number.NaN)
const loadAverage = () => os.loadavg().map((n) => n.toFixed(2)).join(' ')

const servers: Array<{name: string; url: string; auth: string; child?: ChildProcess; pid?: number}> = []
try {
  const file = path.join(work, 'big.bin')
  const handle = await fs.open(file, 'w')
  for (let written = 0; written < SIZE; written += 16 << 20) await handle.write(randomBytes(16 << 20))
  await handle.close()

  const apache = await apacheDav()
  const apachePid = Number(await fs.readFile(path.join(path.dirname(apache.root), 'httpd.pid'), 'utf8').catch(() => 'NaN'))
  servers.push({name: 'Apache mod_dav', url: `${apache.url}/`, auth: `${apache.user}:${apache.password}`, pid: Number.isNaN(apachePid) ? undefined : apachePid})
  const local = await serve({HOME: work, DISK_LOCAL_ROOT: path.join(work, 'local')}, ['--backend', 'local'])
  servers.push({name: 'serve webdav (local)', url: local.url, auth: 'u:p', child: local.child, pid: local.child.pid})
  const cluster = await serve({HOME: work, DISK_DATA_DIR: path.join(work, 'cluster')}, ['--backend', 'cluster'])
  servers.push({name: 'serve webdav (cluster)', url: cluster.url, auth: 'u:p', child: cluster.child, pid: cluster.child.pid})

  console.log(`load average before: ${loadAverage()}  (${os.cpus().length} cores)`)
  const up: Record<string, number[]> = {}
  const down: Record<string, number[]> = {}
  const curlCpu: Record<string, number[]> = {}
  const serverCpu: Record<string, number[]> = {}
  const rss: Record<string, number[]> = {}
  for (let round = 0; round < ROUNDS; round++) {
    for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
      const target = `${server.url}big-${round}.bin`
      settle()
      const put: Measured = await measure('curl', ['-sS', '-f', '-u', server.auth, '-T', file, target])
      const back = path.join(work, 'back.bin')
      settle()
      const before = await cpuSeconds(server.pid, server.name.startsWith('Apache'))
      const get: Measured = await measure('curl', ['-sS', '-f', '-u', server.auth, '-o', back, target])
      ;(serverCpu[server.name] ??= []).push((await cpuSeconds(server.pid, server.name.startsWith('Apache'))) - before)
      const size = (await fs.stat(back).catch(() => ({size: -1}))).size
      if (put.code !== 0 || get.code !== 0 || size !== SIZE) console.log(`${server.name}: round ${round} failed (put ${put.code}, get ${get.code}, ${size} bytes) ${put.stderr}${get.stderr}`)
      ;(up[server.name] ??= []).push(mbps(SIZE, put.seconds))
      ;(down[server.name] ??= []).push(mbps(SIZE, get.seconds))
      ;(curlCpu[server.name] ??= []).push(cpuOf(get))
      await fs.rm(back, {force: true})
      // Each round's files go once measured (the last round's stay for the GETs below): otherwise every round
      // finds less free memory than the one before, and later rounds paid for new page-cache memory.
      if (round < ROUNDS - 1) await measure('curl', ['-sS', '-u', server.auth, '-X', 'DELETE', target])
    }
  }

  // GETs into /dev/null of the files the last round left: the servers' own rate, no client disk.
  const nullServers = servers.filter((server) => !server.name.includes('cluster'))
  const toNull: Record<string, number[]> = {}
  const nullCurlCpu: Record<string, number[]> = {}
  const nullServerCpu: Record<string, number[]> = {}
  for (let round = 0; round < ROUNDS; round++) {
    for (const server of round % 2 === 0 ? nullServers : [...nullServers].reverse()) {
      const before = await cpuSeconds(server.pid, server.name.startsWith('Apache'))
      const get = await measure('curl', ['-sS', '-f', '-u', server.auth, '-o', '/dev/null', `${server.url}big-${ROUNDS - 1}.bin`])
      ;(nullServerCpu[server.name] ??= []).push((await cpuSeconds(server.pid, server.name.startsWith('Apache'))) - before)
      if (get.code !== 0) console.log(`${server.name}: GET to /dev/null failed (${get.code}) ${get.stderr.split('\n')[0]}`)
      ;(toNull[server.name] ??= []).push(mbps(SIZE, get.seconds))
      ;(nullCurlCpu[server.name] ??= []).push(cpuOf(get))
    }
  }

  for (const server of servers) {
    await measure('curl', ['-sS', '-u', server.auth, '-X', 'DELETE', `${server.url}big-${ROUNDS - 1}.bin`])
    if (!server.child?.pid) continue
    const status = await fs.readFile(`/proc/${server.child.pid}/status`, 'utf8').catch(() => '')
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status)
    if (hwm) (rss[server.name] ??= []).push(Number(hwm[1]) / 1024)
  }

  const apacheUp = median(up['Apache mod_dav'])
  const apacheDown = median(down['Apache mod_dav'])
  const all = (values: number[]) => `[${values.map((n) => n.toFixed(0)).join(' ')}]`
  console.log(`256 MiB with curl (-T FILE up, -o FILE down), ${ROUNDS} rounds alternating, medians (MB/s); all rounds in brackets`)
  for (const server of servers) {
    const u = median(up[server.name])
    const d = median(down[server.name])
    const ratio = server.name.startsWith('Apache') ? '' : `  up ${((100 * u) / apacheUp).toFixed(0)}%, down ${((100 * d) / apacheDown).toFixed(0)}% of Apache (target 100%)`
    const peak = rss[server.name] ? `  server peak RSS ${rss[server.name][0].toFixed(0)} MB` : ''
    const cpu = `  per GET: curl CPU ${median(curlCpu[server.name]).toFixed(2)} s, server CPU ${median(serverCpu[server.name]).toFixed(2)} s`
    console.log(`${server.name.padEnd(24)} up ${u.toFixed(0).padStart(5)} ${all(up[server.name])}  down ${d.toFixed(0).padStart(5)} ${all(down[server.name])}${ratio}${cpu}${peak}`)
  }

  console.log(`GET with curl -o /dev/null (the server's own rate, no client disk; not the target's figure), ${ROUNDS} rounds alternating, medians (MB/s)`)
  const apacheNull = median(toNull['Apache mod_dav'])
  for (const server of nullServers) {
    const d = median(toNull[server.name])
    const ratio = server.name.startsWith('Apache') ? '' : `  ${((100 * d) / apacheNull).toFixed(0)}% of Apache`
    console.log(`${(server.name + ' -> null').padEnd(32)} down ${d.toFixed(0).padStart(5)} ${all(toNull[server.name])}${ratio}  per GET: curl CPU ${median(nullCurlCpu[server.name]).toFixed(2)} s, server CPU ${median(nullServerCpu[server.name]).toFixed(2)} s`)
  }

  // The webdav: backend itself, against the same Apache: the CLI's upload and download beside curl's.
  const cliEnv = {...process.env, HOME: work, WEBDAV_URL: apache.url, WEBDAV_USER: apache.user, WEBDAV_PASSWORD: apache.password}
  const cliUp: number[] = []
  const cliDown: number[] = []
  const cliRss: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const put = await measure(process.execPath, [bin, 'upload', file, `webdav:/cli-${round}.bin`, '--quiet'], cliEnv)
    const back = path.join(work, 'cli-back.bin')
    const get = await measure(process.execPath, [bin, 'download', `webdav:/cli-${round}.bin`, back, '--quiet'], cliEnv)
    if (put.code !== 0 || get.code !== 0) console.log(`webdav: CLI round ${round} failed: ${put.stderr.split('\n')[0]} ${get.stderr.split('\n')[0]}`)
    cliUp.push(mbps(SIZE, put.seconds))
    cliDown.push(mbps(SIZE, get.seconds))
    cliRss.push(Math.max(put.peakRssMb ?? 0, get.peakRssMb ?? 0))
    await fs.rm(back, {force: true})
    await fs.rm(path.join(apache.root, `cli-${round}.bin`), {force: true})
  }

  console.log(
    `${'disk-client webdav: CLI'.padEnd(24)} up ${median(cliUp).toFixed(0).padStart(5)} [${cliUp.map((n) => n.toFixed(0)).join(' ')}]  down ${median(cliDown).toFixed(0).padStart(5)} [${cliDown.map((n) => n.toFixed(0)).join(' ')}]  up ${((100 * median(cliUp)) / apacheUp).toFixed(0)}%, down ${((100 * median(cliDown)) / apacheDown).toFixed(0)}% of curl on Apache  CLI peak RSS ${Math.max(...cliRss).toFixed(0)} MB`,
  )
  console.log(`load average after: ${loadAverage()}`)
} finally {
  for (const server of servers) server.child?.kill('SIGTERM')
  await stopApache()
  await fs.rm(work, {recursive: true, force: true})
}
