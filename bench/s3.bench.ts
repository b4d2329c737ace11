// Issue #16: 256 MiB up and down through our s3: backend and through
// rclone's S3 backend, side by side on the same throwaway Ceph radosgw
// (scripts/radosgw.sh), alternating in each round. Prints each round, the
// medians, our rate as a percentage of rclone's (target >= 100%), the peak
// RSS and the load average. Never fails on a number.
import {execFile} from 'node:child_process'
import {createCipheriv, createHash} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import {mbps, measure, type Measured} from './lib/measure.js'

const run = promisify(execFile)
const SIZE = 256 * 1024 * 1024
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const script = fileURLToPath(new URL('../scripts/radosgw.sh', import.meta.url))
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-s3-'))
const cluster = path.join(work, 'ceph')

async function seeded(file: string, size: number): Promise<void> {
  const cipher = createCipheriv('aes-128-ctr', createHash('sha256').update('bench').digest().subarray(0, 16), Buffer.alloc(16))
  const out = createWriteStream(file)
  const zeros = Buffer.alloc(1024 * 1024)
  for (let n = 0; n < size; n += zeros.length) {
    if (!out.write(cipher.update(zeros))) await new Promise<void>((resolve) => out.once('drain', () => resolve()))
  }

  await new Promise<void>((resolve) => out.end(() => resolve()))
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

/** CPU seconds (user + system) of a measured run, from /usr/bin/time -v. */
function cpu(result: Measured): number {
  const user = /User time \(seconds\): ([\d.]+)/.exec(result.stderr)
  const system = /System time \(seconds\): ([\d.]+)/.exec(result.stderr)
  return Number(user?.[1] ?? 0) + Number(system?.[1] ?? 0)
}

const cpuSeconds = {oursUp: [] as number[], rcloneUp: [] as number[], oursDown: [] as number[], rcloneDown: [] as number[], oursVerified: [] as number[]}

function check(what: string, result: Measured): number {
  const key = what === 'our verified download' ? 'oursVerified' : (what.startsWith('our') ? 'ours' : 'rclone') + (what.endsWith('upload') ? 'Up' : 'Down')
  cpuSeconds[key as keyof typeof cpuSeconds].push(cpu(result))
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}: ${result.stderr.split('\n').slice(0, 3).join(' ')}`)
  return mbps(SIZE, result.seconds)
}

try {
  const started = Date.now()
  const {stdout} = await run('sh', [script, 'start', cluster], {timeout: 180_000})
  const vars = Object.fromEntries(stdout.trim().split(/\s+/).map((pair) => pair.split('=', 2)))
  console.log(`radosgw up in ${((Date.now() - started) / 1000).toFixed(1)} s at ${vars.S3_ENDPOINT}`)
  const ours = {...process.env, HOME: work, ...vars}
  const theirs: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: work,
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Ceph',
    RCLONE_CONFIG_BENCH_ENDPOINT: vars.S3_ENDPOINT,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: vars.S3_ACCESS_KEY_ID,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: vars.S3_SECRET_ACCESS_KEY,
  }
  // The gateway is plain http; a CA bundle from the environment only makes rclone's AWS SDK fail to start.
  delete theirs.AWS_CA_BUNDLE
  const file = path.join(work, 'big.bin')
  await seeded(file, SIZE)
  const made = await measure(process.execPath, [bin, 'mkdir', 's3:/bench', '-q'], ours)
  if (made.code !== 0) throw new Error(`mkdir: ${made.stderr}`)
  // A warm-up upload by each, not measured: the first multipart upload into a fresh gateway ran at about
  // 50 MB/s whoever made it (radosgw creates its data pools on first use), which was always ours in round 1.
  check('warm-up upload (ours)', await measure(process.execPath, [bin, 'upload', file, 's3:/bench/warm-ours.bin', '-q'], ours))
  check('warm-up upload (rclone)', await measure('rclone', ['copyto', file, 'bench:bench/warm-rclone.bin'], theirs))
  for (const name of ['warm-ours.bin', 'warm-rclone.bin']) await measure(process.execPath, [bin, 'rm', `s3:/bench/${name}`, '-q'], ours)
  const rates = {oursUp: [] as number[], rcloneUp: [] as number[], oursDown: [] as number[], rcloneDown: [] as number[], oursVerified: [] as number[]}
  const rss = {up: 0, down: 0}
  for (let round = 1; round <= ROUNDS; round++) {
    const oursFirst = round % 2 === 1
    const up = async (who: 'ours' | 'rclone'): Promise<void> => {
      if (who === 'ours') {
        const result = await measure(process.execPath, [bin, 'upload', file, `s3:/bench/ours-${round}.bin`, '-q'], ours)
        rates.oursUp.push(check('our upload', result))
        rss.up = Math.max(rss.up, result.peakRssMb ?? 0)
      } else {
        rates.rcloneUp.push(check('rclone upload', await measure('rclone', ['copyto', file, `bench:bench/rclone-${round}.bin`], theirs)))
      }
    }

    const down = async (who: 'ours' | 'rclone'): Promise<void> => {
      const target = path.join(work, `back-${who}.bin`)
      if (who === 'ours') {
        const result = await measure(process.execPath, [bin, 'download', `s3:/bench/rclone-${round}.bin`, target, '-q'], ours)
        rates.oursDown.push(check('our download', result))
        rss.down = Math.max(rss.down, result.peakRssMb ?? 0)
      } else {
        rates.rcloneDown.push(check('rclone download', await measure('rclone', ['copyto', `bench:bench/ours-${round}.bin`, target], theirs)))
      }

      await fs.rm(target)
    }

    for (const who of oursFirst ? (['ours', 'rclone'] as const) : (['rclone', 'ours'] as const)) await up(who)
    for (const who of oursFirst ? (['ours', 'rclone'] as const) : (['rclone', 'ours'] as const)) await down(who)
    // Beside them, ours reading its own upload, which carries its SHA-256: the verified download users get
    // (the rows above read the other tool's object: rclone checks no hash on ours, we have none on rclone's).
    const verifiedTarget = path.join(work, 'back-verified.bin')
    const verified = await measure(process.execPath, [bin, 'download', `s3:/bench/ours-${round}.bin`, verifiedTarget, '-q'], ours)
    rates.oursVerified.push(check('our verified download', verified))
    rss.down = Math.max(rss.down, verified.peakRssMb ?? 0)
    await fs.rm(verifiedTarget)
    console.log(
      `round ${round}: up ours ${rates.oursUp.at(-1)!.toFixed(0)} / rclone ${rates.rcloneUp.at(-1)!.toFixed(0)} MB/s; ` +
        `down ours ${rates.oursDown.at(-1)!.toFixed(0)} / rclone ${rates.rcloneDown.at(-1)!.toFixed(0)} MB/s; ours verified ${rates.oursVerified.at(-1)!.toFixed(0)} MB/s`,
    )
    // Each side reads what the other wrote; then both go, to keep the in-memory OSD small.
    await measure(process.execPath, [bin, 'rm', `s3:/bench/ours-${round}.bin`, '-q'], ours)
    await measure(process.execPath, [bin, 'rm', `s3:/bench/rclone-${round}.bin`, '-q'], ours)
  }

  const up = [median(rates.oursUp), median(rates.rcloneUp)]
  const down = [median(rates.oursDown), median(rates.rcloneDown)]
  console.log(`median upload   256 MiB: ours ${up[0].toFixed(0)} MB/s, rclone ${up[1].toFixed(0)} MB/s = ${((100 * up[0]) / up[1]).toFixed(0)}% (target >= 100%)`)
  console.log(`median download 256 MiB: ours ${down[0].toFixed(0)} MB/s, rclone ${down[1].toFixed(0)} MB/s = ${((100 * down[0]) / down[1]).toFixed(0)}% (target >= 100%)`)
  const verified = median(rates.oursVerified)
  console.log(`median verified download (ours, its own object with x-amz-meta-sha256): ${verified.toFixed(0)} MB/s = ${((100 * verified) / down[1]).toFixed(0)}% of rclone's unverified download`)
  const cpuOf = (key: keyof typeof cpuSeconds): string => median(cpuSeconds[key]).toFixed(1)
  console.log(
    `median CPU seconds: upload ours ${cpuOf('oursUp')} / rclone ${cpuOf('rcloneUp')}; download ours ${cpuOf('oursDown')} / rclone ${cpuOf('rcloneDown')}; verified download ours ${cpuOf('oursVerified')}`,
  )
  console.log(`our peak RSS: upload ${rss.up.toFixed(0)} MB, download ${rss.down.toFixed(0)} MB; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
} finally {
  await run('sh', [script, 'stop', cluster]).catch(() => {})
  await fs.rm(work, {recursive: true, force: true})
}
