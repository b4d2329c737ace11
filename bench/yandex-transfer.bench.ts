// Issue #2: a 2 GiB upload and download through the Yandex backend, against
// a local HTTP sink standing in for the API and its upload/download hrefs.
// Prints MB/s and the CLI's peak RSS (target: under 200 MB). Never fails on a number.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {mbps, measure} from './lib/measure.js'
import {startYandexSink} from './lib/yandex-sink.js'

const SIZE = 2 * 1024 ** 3
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-yandex-'))
const sink = await startYandexSink()
try {
  const file = path.join(work, 'big.bin')
  await fs.writeFile(file, '')
  await fs.truncate(file, SIZE) // sparse: no disk space, reads as zeros
  const env = {...process.env, HOME: work, YANDEX_DISK_TOKEN: 'bench', YANDEX_DISK_API_URL: sink.url}
  const up = await measure(process.execPath, [bin, 'upload', file, 'yandex:/big.bin', '--quiet'], env)
  console.log(`upload   2 GiB: ${up.code === 0 ? 'ok' : `exit ${up.code}`}  ${mbps(SIZE, up.seconds).toFixed(0)} MB/s  peak RSS ${up.peakRssMb?.toFixed(0)} MB (target < 200 MB)`)
  const down = await measure(process.execPath, [bin, 'download', 'yandex:/big.bin', path.join(work, 'back.bin'), '--quiet'], env)
  console.log(`download 2 GiB: ${down.code === 0 ? 'ok' : `exit ${down.code}`}  ${mbps(SIZE, down.seconds).toFixed(0)} MB/s  peak RSS ${down.peakRssMb?.toFixed(0)} MB (target < 200 MB)`)
  if (up.code !== 0 || down.code !== 0) console.log(up.stderr.split('\n')[0], down.stderr.split('\n')[0])
} finally {
  await sink.close()
  await fs.rm(work, {recursive: true, force: true})
}
