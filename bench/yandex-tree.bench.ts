// Issue 10, point 3: a tree of 200 files of 10 KiB to and from Yandex.Disk,
// --transfers 4, against a local stand-in that waits 50 ms before every
// answer. Times the built CLI as a process and prints requests per file;
// when rclone is installed it runs rclone's yandex backend against the same
// stand-in in the same run (through a local CONNECT proxy that terminates
// TLS: rclone's API host is fixed) and prints the ratios. Medians of RUNS
// runs, the contenders interleaved. Targets: upload ≤ 0.6× rclone,
// download ≤ 0.6× rclone and ≤ 2 requests a file. Never fails on a number.
import {spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {startTlsProxy, type TlsProxy} from './lib/tls-proxy.js'
import {startYandexStandIn, type StandIn} from './lib/yandex-standin.js'

const FILES = 200
const SIZE = 10 * 1024
const LATENCY_MS = 50
const TRANSFERS = 4
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const API_HOSTS = ['cloud-api.yandex.com', 'cloud-api.yandex.net'] // rclone 1.60 uses .com; later versions .net
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))

/** File i's content: fixed bytes, so every run moves the same data. */
const contentOf = (i: number) => {
  const seed = createHash('sha256').update(`file ${i}`).digest()
  return Buffer.concat(Array.from({length: SIZE / seed.length}, () => seed))
}

const nameOf = (i: number) => (i < FILES / 2 ? `f${String(i).padStart(3, '0')}.bin` : `sub/f${String(i).padStart(3, '0')}.bin`)

interface Run {
  seconds: number
  /** User + system CPU seconds of the process, from GNU time; null without it. */
  cpu: number | null
  requests: number
  /** Requests by kind, e.g. `GET /resources/download: 200`. */
  kinds: string
  code: number | null
  stderr: string
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, standIn: StandIn): Promise<Run> {
  standIn.reset()
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = hasTime
      ? spawn('/usr/bin/time', ['-f', 'cpu %U %S', command, ...args], {env, stdio: ['ignore', 'ignore', 'pipe']})
      : spawn(command, args, {env, stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => {
      const kinds = [...standIn.counts].map(([kind, n]) => `${kind}: ${n}`).join(', ')
      const times = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(stderr)
      const cpu = times ? Number(times[1]) + Number(times[2]) : null
      resolve({seconds: Number(process.hrtime.bigint() - started) / 1e9, cpu, requests: standIn.total(), kinds, code, stderr})
    })
  })
}

/** Throws unless `dir` holds the whole tree, byte for byte. */
async function checkLocal(dir: string): Promise<void> {
  for (let i = 0; i < FILES; i++) {
    const got = await fs.readFile(path.join(dir, nameOf(i)))
    if (!got.equals(contentOf(i))) throw new Error(`${dir}/${nameOf(i)} differs`)
  }
}

/** Throws unless the stand-in holds the whole tree under `root`. */
function checkRemote(standIn: StandIn, root: string): void {
  for (let i = 0; i < FILES; i++) {
    if (!standIn.read(`${root}/${nameOf(i)}`)?.equals(contentOf(i))) throw new Error(`${root}/${nameOf(i)} missing or different`)
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

const hasRclone = spawnSync('rclone', ['version'], {stdio: 'ignore'}).status === 0
const hasTime = spawnSync('/usr/bin/time', ['-f', '', 'true'], {stdio: 'ignore'}).status === 0
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-ytree-'))
const standIn = await startYandexStandIn(LATENCY_MS)
let proxy: TlsProxy | undefined
try {
  const source = path.join(work, 'tree')
  await fs.mkdir(path.join(source, 'sub'), {recursive: true})
  for (let i = 0; i < FILES; i++) {
    await fs.writeFile(path.join(source, nameOf(i)), contentOf(i))
    standIn.addFile(`/tree/${nameOf(i)}`, contentOf(i))
  }

  const ours: NodeJS.ProcessEnv = {...process.env, HOME: work, YANDEX_DISK_TOKEN: 'bench', YANDEX_DISK_API_URL: standIn.apiUrl}
  let rclone: {env: NodeJS.ProcessEnv; flags: string[]} | undefined
  if (hasRclone) {
    proxy = await startTlsProxy(API_HOSTS, standIn.handler, work)
    const config = path.join(work, 'rclone.conf')
    const token = JSON.stringify({access_token: 'bench', token_type: 'OAuth', refresh_token: 'bench', expiry: '2099-01-01T00:00:00Z'})
    await fs.writeFile(config, `[standin]\ntype = yandex\ntoken = ${token}\n`)
    const env: NodeJS.ProcessEnv = {...process.env, HOME: work, HTTPS_PROXY: proxy.url, https_proxy: proxy.url, NO_PROXY: '', no_proxy: ''}
    rclone = {env, flags: ['--config', config, '--ca-cert', proxy.caFile, '--transfers', String(TRANSFERS), '-q']}
  }

  const results = {dcUp: [] as Run[], dcDown: [] as Run[], rcUp: [] as Run[], rcDown: [] as Run[]}
  const fail = (what: string, r: Run) => {
    if (r.code !== 0) throw new Error(`${what}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`)
  }

  for (let i = 0; i < RUNS; i++) {
    const up = await run(process.execPath, [bin, 'upload', source, `yandex:/up-dc-${i}`, '--transfers', String(TRANSFERS), '--quiet'], ours, standIn)
    fail('disk-client upload', up)
    checkRemote(standIn, `/up-dc-${i}`)
    results.dcUp.push(up)
    const down = await run(process.execPath, [bin, 'download', 'yandex:/tree', path.join(work, `down-dc-${i}`), '--transfers', String(TRANSFERS), '--quiet'], ours, standIn)
    fail('disk-client download', down)
    await checkLocal(path.join(work, `down-dc-${i}`))
    results.dcDown.push(down)
    if (rclone) {
      const rcUp = await run('rclone', ['copy', source, `standin:up-rc-${i}`, ...rclone.flags], rclone.env, standIn)
      fail('rclone upload', rcUp)
      checkRemote(standIn, `/up-rc-${i}`)
      results.rcUp.push(rcUp)
      const rcDown = await run('rclone', ['copy', 'standin:tree', path.join(work, `down-rc-${i}`), ...rclone.flags], rclone.env, standIn)
      fail('rclone download', rcDown)
      await checkLocal(path.join(work, `down-rc-${i}`))
      results.rcDown.push(rcDown)
    }
  }

  const line = (who: string, what: string, runs: Run[]) => {
    const seconds = median(runs.map((r) => r.seconds))
    const perFile = median(runs.map((r) => r.requests)) / FILES
    const cpu = runs.every((r) => r.cpu !== null) ? `  CPU ${median(runs.map((r) => r.cpu!)).toFixed(2)} s` : ''
    console.log(`${who.padEnd(11)} ${what.padEnd(8)} median ${seconds.toFixed(2)} s  (${runs.map((r) => r.seconds.toFixed(2)).join(', ')})${cpu}  ${perFile.toFixed(2)} requests a file`)
    console.log(`${''.padEnd(20)} ${runs[0].kinds}`)
    return seconds
  }

  console.log(`${FILES} files of ${SIZE / 1024} KiB, ${LATENCY_MS} ms a request, --transfers ${TRANSFERS}, ${RUNS} runs; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`)
  const dcUp = line('disk-client', 'upload', results.dcUp)
  const dcDown = line('disk-client', 'download', results.dcDown)
  if (rclone && proxy) {
    const rcUp = line('rclone', 'upload', results.rcUp)
    const rcDown = line('rclone', 'download', results.rcDown)
    const tunnels = [...proxy.connects.values()].reduce((a, b) => a + b, 0)
    console.log(`rclone reached the stand-in through ${tunnels} CONNECT tunnel(s) to ${[...proxy.connects.keys()].join(', ')}`)
    console.log(`ratio disk-client / rclone: upload ${(dcUp / rcUp).toFixed(2)}× (target ≤ 0.6), download ${(dcDown / rcDown).toFixed(2)}× (target ≤ 0.6)`)
  } else {
    console.log('rclone is not installed: disk-client figures only')
  }

} finally {
  await proxy?.close()
  await standIn.close()
  await fs.rm(work, {recursive: true, force: true})
}
