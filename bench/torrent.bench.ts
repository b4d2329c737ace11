// BitTorrent over loopback, every peer on its own 127.0.0.N, found through
// our tracker: 256 MiB from one aria2c seeder, our `torrent get` against an
// aria2c leecher of the same seeder (taking turns, so they never share the
// seeder or trade with each other), then ours from three aria2c seeders, and
// an aria2c leecher from our `torrent seed`. Wall time of each leecher
// process, start to exit (start-up, announce and hash checks included).
// Never exits non-zero on a number.
import fs from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {
  createTorrent,
  haveProgram,
  killAll,
  makeFile,
  nextLoopback,
  sha256File,
  startAria,
  startSeed,
  startTracker,
  tempDir,
} from '../test/torrent/helpers.js'
import {mbps, measure} from './lib/measure.js'

const SIZE = 256 * 1024 * 1024
const ROUNDS = 2
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))

if (!haveProgram('aria2c')) {
  console.log('aria2c is not installed: skipped (scripts/test-deps.sh installs it)')
  process.exit(0)
}

const dir = await tempDir('disk-client-torrent-bench-')
try {
  await main()
} finally {
  await killAll()
  await fs.rm(dir, {recursive: true, force: true})
}

async function main(): Promise<void> {
  const tracker = await startTracker(path.join(dir, 'tracker'), 5)
  const file = await makeFile(path.join(dir, 'seed', 'big.bin'), SIZE, 'torrent-bench')
  const digest = await sha256File(file)
  const torrent = await createTorrent(file, path.join(dir, 'big.torrent'), tracker.announce)
  console.log(`256 MiB over loopback through our tracker (${Math.round(SIZE / (await pieceLength(torrent)))} pieces)`)
  const rows: string[][] = [['leecher', 'seeders', 'seconds', 'MB/s', 'peak RSS MB']]

  const check = async (out: string, what: string): Promise<boolean> => {
    const ok = (await sha256File(path.join(out, 'big.bin')).catch(() => '')) === digest
    if (!ok) console.log(`${what}: the download is not identical`)
    await fs.rm(out, {recursive: true, force: true})
    return ok
  }

  const ours = async (): Promise<number> => {
    const out = await tempDir()
    const run = await measure(process.execPath, [bin, 'torrent', 'get', torrent, '-o', out, '--host', nextLoopback(), '--timeout', '60000', '-q'])
    if (run.code !== 0 || !(await check(out, 'ours'))) throw new Error(`torrent get exited ${run.code}: ${run.stderr.split('\n')[0]}`)
    rows.push(['ours', String(seeders), run.seconds.toFixed(2), mbps(SIZE, run.seconds).toFixed(1), run.peakRssMb?.toFixed(0) ?? '-'])
    return mbps(SIZE, run.seconds)
  }
  const aria = async (): Promise<number> => {
    const out = await tempDir()
    const host = nextLoopback()
    const args = ['--enable-dht=false', '--enable-dht6=false', '--bt-enable-lpd=false', '--enable-peer-exchange=false', '--disable-ipv6=true', '--summary-interval=0', '--console-log-level=warn', '--file-allocation=none', '--seed-time=0', `--dir=${out}`, `--interface=${host}`, torrent]
    const run = await measure('aria2c', args)
    if (run.code !== 0 || !(await check(out, 'aria2c'))) throw new Error(`aria2c exited ${run.code}`)
    rows.push(['aria2c', String(seeders), run.seconds.toFixed(2), mbps(SIZE, run.seconds).toFixed(1), run.peakRssMb?.toFixed(0) ?? '-'])
    return mbps(SIZE, run.seconds)
  }

  let seeders = 1
  const seedDirs: string[] = []
  const ariaSeeder = async (): Promise<void> => {
    const seedDir = await tempDir()
    await fs.link(file, path.join(seedDir, 'big.bin'))
    seedDirs.push(seedDir)
    await startAria(torrent, seedDir, 'seed')
  }

  await ariaSeeder()
  const oursRates: number[] = []
  const ariaRates: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    ariaRates.push(await aria())
    oursRates.push(await ours())
  }
  const best = (list: number[]): number => Math.max(...list)
  console.log(`from one aria2c seeder, best of ${ROUNDS}: ours ${best(oursRates).toFixed(1)} MB/s, aria2c ${best(ariaRates).toFixed(1)} MB/s, ratio ${(best(oursRates) / best(ariaRates)).toFixed(2)} (target >= 1.00)`)

  await ariaSeeder()
  await ariaSeeder()
  seeders = 3
  const three = await ours()
  console.log(`ours from three aria2c seeders: ${three.toFixed(1)} MB/s`)
  await killAll('test')

  // Our seeder to an aria2c leecher.
  await startSeed(torrent, file)
  seeders = 1
  const before = rows.length
  await aria()
  rows[before][0] = 'aria2c (from our seed)'
  console.log(`aria2c from our seeder: ${rows[before][3]} MB/s`)

  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)))
  for (const row of rows) console.log(row.map((cell, i) => cell.padStart(widths[i])).join('  '))
}

async function pieceLength(torrent: string): Promise<number> {
  const {parseTorrent} = await import('../src/torrent/index.js')
  return parseTorrent(await fs.readFile(torrent)).pieceLength
}
