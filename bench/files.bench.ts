// Issue #4: a 1 GiB upload and download through a local 3-server RF=2
// cluster, beside `cp` of the same file, in one run: MB/s, ratios, and the
// CLI's peak RSS. Targets: download >= 50% of cp, upload >= 30%, RSS < 200 MB.
// Never fails on a number.
import {randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {TestCluster} from '../test/helpers/cluster.js'
import {mbps, measure} from './lib/measure.js'

const SIZE = 1024 ** 3
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-files-'))
const cluster = await TestCluster.start({servers: 3, replicas: 2})
try {
  const file = path.join(work, 'big.bin')
  const handle = await fs.open(file, 'w')
  for (let written = 0; written < SIZE; written += 16 << 20) await handle.write(randomBytes(16 << 20))
  await handle.close()
  const env = {...process.env, HOME: work, DISK_CLUSTER: cluster.routerAddress}

  const cp = await measure('cp', [file, path.join(work, 'cp.bin')])
  await fs.rm(path.join(work, 'cp.bin'))
  const up = await measure(process.execPath, [bin, 'upload', file, '/big.bin', '--quiet'], env)
  const down = await measure(process.execPath, [bin, 'download', '/big.bin', path.join(work, 'back.bin'), '--quiet'], env)
  const cpRate = mbps(SIZE, cp.seconds)
  const row = (name: string, m: typeof up, target: string) =>
    console.log(
      `${name.padEnd(9)} ${m.code === 0 ? 'ok ' : `exit ${m.code}`} ${mbps(SIZE, m.seconds).toFixed(0).padStart(5)} MB/s  ${((100 * mbps(SIZE, m.seconds)) / cpRate).toFixed(1).padStart(5)}% of cp (target ${target})  peak RSS ${m.peakRssMb?.toFixed(0)} MB (target < 200)`,
    )
  console.log(`cp        ok  ${cpRate.toFixed(0).padStart(5)} MB/s  (cp copies inside the kernel, from the page cache: its rate varies widely between runs)`)
  row('upload', up, '30%')
  row('download', down, '50%')
  for (const m of [up, down]) if (m.code !== 0) console.log(m.stderr.split('\n').slice(0, 3).join('\n'))
} finally {
  await cluster.stop()
  await fs.rm(work, {recursive: true, force: true})
}

// Issue #15, the embedded mode (no DISK_CLUSTER): its own rows, beside
// `rclone copy` between two local folders (bench/lib/embedded-files.ts).
await (await import('./lib/embedded-files.js')).embeddedRows()
