// Issue #15, the embedded mode (no DISK_CLUSTER): a 1 GiB upload and
// download beside `rclone copy` of the same file between two local folders,
// in one run, best of three for every contender, after a `sync` and with the
// source read into the page cache first. Targets (DESIGN.md §16): upload and download >= 100% of
// rclone, CLI peak RSS < 200 MiB. Every upload goes into a fresh data dir
// (a second upload of the same bytes would only find its pieces there).
// Never fails on a number. Run alone: node --import tsx bench/lib/embedded-files.ts
import {spawnSync} from 'node:child_process'
import {createCipheriv} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {mbps, measure, type Measured} from './measure.js'

const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

/** Writes `size` deterministic, incompressible bytes (AES-CTR of zeros under a fixed key). */
async function makeFile(file: string, size: number): Promise<void> {
  const handle = await fs.open(file, 'w')
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16))
  const zeros = Buffer.alloc(16 << 20)
  for (let written = 0; written < size; written += zeros.length) {
    await handle.write(cipher.update(zeros.subarray(0, Math.min(zeros.length, size - written))))
  }
  await handle.close()
}

/** `sync`: no run pays for the writeback of the one before it (bench/files.bench.ts, settle). */
function settle(): void {
  spawnSync('sync', [], {stdio: 'ignore'})
}

async function readAll(file: string): Promise<void> {
  settle()
  const handle = await fs.open(file)
  const buffer = Buffer.allocUnsafe(8 << 20)
  while ((await handle.read(buffer, 0, buffer.length)).bytesRead > 0);
  await handle.close()
}

const best = (runs: Measured[]): Measured => runs.filter((m) => m.code === 0).sort((a, b) => a.seconds - b.seconds)[0] ?? runs[0]

export async function embeddedRows(size = Number(process.env.BENCH_EMBEDDED_BYTES ?? 1024 ** 3), rounds = 3): Promise<void> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-embedded-'))
  try {
    const file = path.join(work, 'big.bin')
    await makeFile(file, size)
    const rclone: Measured[] = []
    const up: Measured[] = []
    const down: Measured[] = []
    for (let round = 0; round < rounds; round++) {
      await readAll(file)
      const target = path.join(work, `rclone-${round}`)
      rclone.push(await measure('rclone', ['copy', file, target]))
      await fs.rm(target, {recursive: true, force: true})

      await readAll(file)
      const env = {...process.env, HOME: path.join(work, `home-${round}`), DISK_CLUSTER: ''}
      await fs.mkdir(env.HOME, {recursive: true})
      up.push(await measure(process.execPath, [bin, 'upload', file, '/big.bin', '--quiet'], env))
      const back = path.join(work, `back-${round}.bin`)
      settle()
      down.push(await measure(process.execPath, [bin, 'download', '/big.bin', back, '--quiet'], env))
      await fs.rm(back, {force: true})
      if (round > 0) await fs.rm(path.join(work, `home-${round - 1}`), {recursive: true, force: true})
    }

    const rate = (m: Measured) => mbps(size, m.seconds)
    const reference = rate(best(rclone))
    const all = (runs: Measured[]) => runs.map((m) => (m.code === 0 ? rate(m).toFixed(0) : `exit ${m.code}`)).join('/')
    console.log(`embedded mode, ${(size / 1024 ** 2).toFixed(0)} MiB, best of ${rounds} (all runs MB/s in brackets); load average ${os.loadavg().map((n) => n.toFixed(2)).join(' ')}`)
    console.log(`rclone copy      ${reference.toFixed(0).padStart(5)} MB/s  [${all(rclone)}]`)
    for (const [name, runs] of [
      ['upload', up],
      ['download', down],
    ] as const) {
      const m = best(runs)
      console.log(
        `embedded ${name.padEnd(8)}${rate(m).toFixed(0).padStart(5)} MB/s  ${((100 * rate(m)) / reference).toFixed(1).padStart(5)}% of rclone (target 100%)  peak RSS ${Math.max(...runs.map((r) => r.peakRssMb ?? 0)).toFixed(0)} MB (target < 200)  [${all(runs)}]`,
      )
      for (const failed of runs.filter((r) => r.code !== 0)) console.log(failed.stderr.split('\n').slice(0, 3).join('\n'))
    }
  } finally {
    await fs.rm(work, {recursive: true, force: true})
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await embeddedRows()
