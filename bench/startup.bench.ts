// Issue #10, point 4: start-up time. `disk-client ls local:/dir` of a folder
// of 20 files, beside `rclone lsf` of the same folder and `node -e 0`, in one
// run: medians and ratios. Target: ours <= 3x rclone lsf. Uses hyperfine -N
// when installed, else alternating spawns. Never fails on a number.
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const RUNS = 40
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-startup-'))

const has = (program: string) => spawnSync(program, ['--version'], {stdio: 'ignore'}).status === 0

interface Case {
  name: string
  argv: string[]
}

interface Timing {
  medianMs: number
  /** Mean user + system CPU time: steadier than wall time on a shared machine. */
  cpuMs?: number
}

/** hyperfine -N: no shell in between, warm-up runs, then RUNS timed runs each. */
function withHyperfine(cases: Case[], env: NodeJS.ProcessEnv): Map<string, Timing> {
  const json = path.join(work, 'hyperfine.json')
  const commands = cases.map((c) => c.argv.map((word) => (/[\s"'\\]/.test(word) ? JSON.stringify(word) : word)).join(' '))
  const result = spawnSync('hyperfine', ['-N', '--warmup', '5', '--runs', String(RUNS), '--export-json', json, ...commands], {env, stdio: ['ignore', 'ignore', 'inherit']})
  if (result.status !== 0) throw new Error(`hyperfine exited ${result.status}`)
  const report = JSON.parse(readFileSync(json, 'utf8')) as {results: {median: number; user: number; system: number}[]}
  return new Map(cases.map((c, i) => [c.name, {medianMs: report.results[i].median * 1000, cpuMs: (report.results[i].user + report.results[i].system) * 1000}]))
}

/** Without hyperfine: the cases in turn, RUNS rounds, so that load changes hit each alike. */
function withSpawns(cases: Case[], env: NodeJS.ProcessEnv): Map<string, Timing> {
  const times = new Map<string, number[]>(cases.map((c) => [c.name, []]))
  for (let round = -3; round < RUNS; round++) {
    for (const c of cases) {
      const started = process.hrtime.bigint()
      const result = spawnSync(c.argv[0], c.argv.slice(1), {env, stdio: 'ignore'})
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      if (result.status !== 0) throw new Error(`${c.name} exited ${result.status}`)
      if (round >= 0) times.get(c.name)!.push(ms)
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  return new Map([...times].map(([name, xs]) => [name, {medianMs: median(xs)}]))
}

try {
  const dir = path.join(work, 'local', 'dir')
  await fs.mkdir(dir, {recursive: true})
  for (let i = 0; i < 20; i++) await fs.writeFile(path.join(dir, `file-${i}.txt`), `file ${i}\n`)
  const env = {...process.env, HOME: work, DISK_LOCAL_ROOT: path.join(work, 'local')}

  const cases: Case[] = [{name: 'disk-client ls local:/dir', argv: [process.execPath, bin, 'ls', 'local:/dir']}]
  const rclone = has('rclone')
  if (rclone) cases.push({name: 'rclone lsf', argv: ['rclone', 'lsf', dir]})
  cases.push({name: 'node -e 0', argv: [process.execPath, '-e', '0']})

  const check = spawnSync(process.execPath, [bin, 'ls', 'local:/dir'], {env, encoding: 'utf8'})
  if (check.status !== 0 || check.stdout.trim().split('\n').length !== 20) throw new Error(`ls failed: ${check.stderr}`)

  const hyperfine = has('hyperfine')
  const timings = hyperfine ? withHyperfine(cases, env) : withSpawns(cases, env)
  console.log(`${RUNS} runs each, ${hyperfine ? 'hyperfine -N' : 'alternating spawns (hyperfine not installed)'}: median wall time, mean CPU (user+sys)`)
  const median = (name: string) => timings.get(name)!.medianMs
  for (const c of cases) {
    const {medianMs, cpuMs} = timings.get(c.name)!
    console.log(`  ${c.name.padEnd(26)} ${medianMs.toFixed(1).padStart(7)} ms${cpuMs === undefined ? '' : `   CPU ${cpuMs.toFixed(1).padStart(6)} ms`}`)
  }
  const ours = median(cases[0].name)
  if (rclone) console.log(`  ours / rclone lsf:  ${(ours / median('rclone lsf')).toFixed(2)}x (target <= 3x)`)
  else console.log('  (rclone not installed: no ratio to rclone lsf)')
  console.log(`  ours / node -e 0:   ${(ours / median('node -e 0')).toFixed(2)}x`)
} finally {
  await fs.rm(work, {recursive: true, force: true})
}
