// Issue #17: `sync` of 2,000 small files from a local folder to the cluster
// with nothing changed — the time to decide there is nothing to do — beside
// `rclone sync` of the same folder between two local folders, in one run,
// interleaved, ROUNDS times; medians and ratios. Two cluster set-ups: the
// embedded one (the default: the process opens its own data dir) and a
// running router + server (DISK_CLUSTER). `ls local:/` is shown as the
// floor every CLI run pays (Node + oclif start-up). Below it, what no Node
// program can go under here: `node -e 0`, and a bare script that loads no
// module of ours and only stats both trees and compares them (WALK).
// Target: <= 1.5x rclone.
// Never fails on a number.
import {execFileSync} from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {TestCluster} from '../test/helpers/cluster.js'
import {measure, type Measured} from './lib/measure.js'

const DIRS = 20
const PER_DIR = 100
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)
const COPY_ROUNDS = 3
// The least any sync in Node does to decide "nothing to do": list both trees,
// stat every file, compare size and modification time. Run as `node -e`.
const WALK = `
const fs = require('node:fs'), path = require('node:path')
function walk(root) {
  const out = new Map(), stack = ['']
  while (stack.length > 0) {
    const rel = stack.pop()
    for (const entry of fs.readdirSync(path.join(root, rel), {withFileTypes: true})) {
      const name = rel ? rel + '/' + entry.name : entry.name
      if (entry.isDirectory()) stack.push(name)
      else { const st = fs.statSync(path.join(root, name)); out.set(name, [st.size, st.mtimeMs]) }
    }
  }
  return out
}
const [from, to] = process.argv.slice(1)
const a = walk(from), b = walk(to)
let unchanged = 0
for (const [name, [size, mtime]] of a) { const other = b.get(name); if (other && other[0] === size && Math.abs(other[1] - mtime) < 1) unchanged++ }
if (unchanged !== a.size || a.size !== b.size) process.exit(1)
`
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-sync-'))
const cluster = await TestCluster.start({servers: 1, replicas: 1})
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
try {
  const src = path.join(work, 'src')
  for (let d = 0; d < DIRS; d++) {
    await fs.mkdir(path.join(src, `d${d}`), {recursive: true})
    for (let f = 0; f < PER_DIR; f++) await fs.writeFile(path.join(src, `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`)
  }

  const base = {...process.env, HOME: work, DISK_LOCAL_ROOT: path.join(work, 'root')}
  const embedded = {...base, DISK_DATA_DIR: path.join(work, 'embedded')}
  const routed = {...base, DISK_CLUSTER: cluster.routerAddress}
  const sync = () => [bin, 'sync', `file:${src}`, 'cluster:/dst', '--json', '--transfers', '8']
  const ours = (env: NodeJS.ProcessEnv) => measure(process.execPath, sync(), env)
  const rclone = () => measure('rclone', ['sync', src, path.join(work, 'rclone-dst'), '-q', '--config', '/dev/null'])
  // First syncs copy everything; they are not what is measured.
  for (const env of [embedded, routed]) {
    const first = JSON.parse(execFileSync(process.execPath, sync(), {env, encoding: 'utf8'}))
    if (first.copied !== DIRS * PER_DIR) throw new Error(`first sync copied ${first.copied}`)
  }

  await rclone()
  // The measured syncs must decide "nothing to do": checked once, outside the timing.
  for (const env of [embedded, routed]) {
    const again = JSON.parse(execFileSync(process.execPath, sync(), {env, encoding: 'utf8'}))
    if (again.copied !== 0 || again.deleted !== 0 || again.unchanged !== DIRS * PER_DIR) throw new Error(`second sync did something: ${JSON.stringify(again)}`)
  }

  const times: Record<string, number[]> = {rclone: [], embedded: [], router: [], floor: [], walk: [], node: []}
  for (let round = 0; round < ROUNDS; round++) {
    const runs: Array<[string, () => Promise<Measured>]> = [
      ['rclone', rclone],
      ['embedded', () => ours(embedded)],
      ['router', () => ours(routed)],
      ['floor', () => measure(process.execPath, [bin, 'ls', 'local:/', '-q'], base)],
      ['walk', () => measure(process.execPath, ['-e', WALK, src, path.join(work, 'rclone-dst')])],
      ['node', () => measure(process.execPath, ['-e', '0'])],
    ]
    for (const [name, run] of runs) {
      const m = await run()
      if (m.code !== 0) throw new Error(`${name} exited ${m.code}: ${m.stderr.slice(0, 300)}`)
      times[name].push(m.seconds)
    }
  }

  // The first copy of the same small files into an empty local folder: the
  // transfer engine's cost per small file (ours fsyncs each file before
  // moving it into place; rclone does not), CPU beside wall time.
  const copies: Record<string, Measured[]> = {rclone: [], ours: []}
  for (let round = 0; round < COPY_ROUNDS; round++) {
    for (const name of ['rclone', 'ours'] as const) {
      const to = path.join(work, `copy-${name}-${round}`)
      const m =
        name === 'rclone'
          ? await measure('rclone', ['sync', src, to, '-q', '--config', '/dev/null'])
          : await measure(process.execPath, [bin, 'sync', `file:${src}`, `file:${to}`, '--json', '--transfers', '8'], base)
      if (m.code !== 0) throw new Error(`${name} copy exited ${m.code}: ${m.stderr.slice(0, 300)}`)
      copies[name].push(m)
      await fs.rm(to, {recursive: true, force: true})
    }
  }

  const r = median(times.rclone)
  console.log(`${DIRS * PER_DIR} files, nothing changed; medians of ${ROUNDS} interleaved rounds; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  console.log(`rclone sync (local -> local)          ${r.toFixed(3)} s`)
  for (const [name, label] of [
    ['embedded', 'sync -> embedded cluster'],
    ['router', 'sync -> cluster router (DISK_CLUSTER)'],
    ['floor', 'ls local:/ (CLI start-up floor)'],
    ['walk', 'bare Node: stat both trees, compare'],
    ['node', 'node -e 0'],
  ] as const) {
    const m = median(times[name])
    const target = name === 'embedded' || name === 'router' ? ' (target <= 1.5x)' : ''
    console.log(`${label.padEnd(38)} ${m.toFixed(3)} s  ${(m / r).toFixed(2)}x rclone${target}`)
  }
  const cpu = (m: Measured) => (m.userSeconds ?? NaN) + (m.systemSeconds ?? NaN)
  const rc = median(copies.rclone.map((m) => m.seconds))
  const oc = median(copies.ours.map((m) => m.seconds))
  console.log(`first copy of the same files into an empty local folder, medians of ${COPY_ROUNDS} interleaved rounds:`)
  console.log(`rclone sync (local -> local)          ${rc.toFixed(3)} s  (CPU ${median(copies.rclone.map(cpu)).toFixed(2)} s)`)
  console.log(`sync file: -> file: (fsync per file)  ${oc.toFixed(3)} s  ${(oc / rc).toFixed(2)}x rclone  (CPU ${median(copies.ours.map(cpu)).toFixed(2)} s)`)
} finally {
  await cluster.stop()
  await fs.rm(work, {recursive: true, force: true})
}
