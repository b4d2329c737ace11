// Issue #16: 256 MiB up (PUT) and down (GET) with the same client (curl)
// through `disk-client serve webdav` and through Apache httpd with mod_dav,
// side by side in one run, rounds alternating; medians and ratios. Both
// servers keep the file on the local disk (serve webdav over the local
// backend); a third row serves the embedded cluster. Target: serve webdav
// >= 100% of Apache both ways. Never fails on a number.
import {spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {apacheDav, stopApache} from '../test/helpers/apache.js'
import {mbps, measure, type Measured} from './lib/measure.js'

const SIZE = 256 << 20
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
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

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const loadAverage = () => os.loadavg().map((n) => n.toFixed(2)).join(' ')

const servers: Array<{name: string; url: string; auth: string; child?: ChildProcess}> = []
try {
  const file = path.join(work, 'big.bin')
  const handle = await fs.open(file, 'w')
  for (let written = 0; written < SIZE; written += 16 << 20) await handle.write(randomBytes(16 << 20))
  await handle.close()

  const apache = await apacheDav()
  servers.push({name: 'Apache mod_dav', url: `${apache.url}/`, auth: `${apache.user}:${apache.password}`})
  const local = await serve({HOME: work, DISK_LOCAL_ROOT: path.join(work, 'local')}, ['--backend', 'local'])
  servers.push({name: 'serve webdav (local)', url: local.url, auth: 'u:p', child: local.child})
  const cluster = await serve({HOME: work, DISK_DATA_DIR: path.join(work, 'cluster')}, ['--backend', 'cluster'])
  servers.push({name: 'serve webdav (cluster)', url: cluster.url, auth: 'u:p', child: cluster.child})

  console.log(`load average before: ${loadAverage()}  (${os.cpus().length} cores)`)
  const up: Record<string, number[]> = {}
  const down: Record<string, number[]> = {}
  const rss: Record<string, number[]> = {}
  for (let round = 0; round < ROUNDS; round++) {
    for (const server of servers) {
      const target = `${server.url}big-${round}.bin`
      const put: Measured = await measure('curl', ['-sS', '-f', '-u', server.auth, '-T', file, target])
      const back = path.join(work, 'back.bin')
      const get: Measured = await measure('curl', ['-sS', '-f', '-u', server.auth, '-o', back, target])
      const size = (await fs.stat(back).catch(() => ({size: -1}))).size
      if (put.code !== 0 || get.code !== 0 || size !== SIZE) console.log(`${server.name}: round ${round} failed (put ${put.code}, get ${get.code}, ${size} bytes) ${put.stderr}${get.stderr}`)
      ;(up[server.name] ??= []).push(mbps(SIZE, put.seconds))
      ;(down[server.name] ??= []).push(mbps(SIZE, get.seconds))
      await fs.rm(back, {force: true})
      await measure('curl', ['-sS', '-u', server.auth, '-X', 'DELETE', target])
    }
  }

  for (const server of servers) {
    if (!server.child?.pid) continue
    const status = await fs.readFile(`/proc/${server.child.pid}/status`, 'utf8').catch(() => '')
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status)
    if (hwm) (rss[server.name] ??= []).push(Number(hwm[1]) / 1024)
  }

  const apacheUp = median(up['Apache mod_dav'])
  const apacheDown = median(down['Apache mod_dav'])
  console.log(`256 MiB with curl, ${ROUNDS} rounds alternating, medians (MB/s); all rounds in brackets`)
  for (const server of servers) {
    const u = median(up[server.name])
    const d = median(down[server.name])
    const ratio = server.name.startsWith('Apache') ? '' : `  up ${((100 * u) / apacheUp).toFixed(0)}%, down ${((100 * d) / apacheDown).toFixed(0)}% of Apache (target 100%)`
    const peak = rss[server.name] ? `  server peak RSS ${rss[server.name][0].toFixed(0)} MB` : ''
    console.log(
      `${server.name.padEnd(24)} up ${u.toFixed(0).padStart(5)} [${up[server.name].map((n) => n.toFixed(0)).join(' ')}]  down ${d.toFixed(0).padStart(5)} [${down[server.name].map((n) => n.toFixed(0)).join(' ')}]${ratio}${peak}`,
    )
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
