// `torrent get` against real peers: aria2c seeders, our own seeder, a
// corrupt peer of our own, found through our tracker; each peer on its own
// 127.0.0.N.
import {expect} from 'chai'
import fs from 'node:fs/promises'
import path from 'node:path'

import {runCli, spawnCli} from '../helpers/cli.js'
import {
  createTorrent,
  type GetJson,
  killAll,
  makeFile,
  nextLoopback,
  sha256File,
  startAria,
  startCli,
  startSeed,
  startTracker,
  tempDir,
  track,
  type Tracker,
  waitFor,
} from './helpers.js'
import {CorruptPeer} from './corrupt-peer.js'

const MiB = 1024 * 1024

describe('torrent get', function () {
  this.timeout(120_000)
  let dir: string
  let tracker: Tracker
  let file: string
  let torrent: string
  let digest: string

  before(async () => {
    dir = await tempDir()
    tracker = await startTracker(path.join(dir, 'tracker'))
    file = await makeFile(path.join(dir, 'src', 'data.bin'), 12 * MiB + 12_345, 'get-1')
    digest = await sha256File(file)
    torrent = await createTorrent(file, path.join(dir, 'data.torrent'), tracker.announce)
  })

  afterEach(async () => {
    await killAll('test')
  })

  after(async () => {
    await killAll()
    await fs.rm(dir, {recursive: true, force: true})
  })

  /** An aria2c seeder of `file`: a folder holding a copy named as the torrent says. */
  async function ariaSeeder(name = 'data.bin', source = file, t = torrent): Promise<Awaited<ReturnType<typeof startAria>>> {
    const seedDir = await tempDir()
    await fs.copyFile(source, path.join(seedDir, name))
    return startAria(t, seedDir, 'seed')
  }

  async function get(args: string[], out?: string, host = nextLoopback()): Promise<{code: number | null; json: GetJson; stderr: string; out: string}> {
    const target = out ?? (await tempDir())
    const result = await runCli(['torrent', 'get', ...args, '-o', target, '--host', host, '--timeout', '30000', '--json'], {timeoutMs: 110_000})
    if (result.code !== 0) throw new Error(`get exited ${result.code}: ${result.stderr}${result.stdout}`)
    return {code: result.code, json: JSON.parse(result.stdout) as GetJson, stderr: result.stderr, out: target}
  }

  it('downloads byte-identical from one aria2c seeder found through our tracker', async () => {
    const seeder = await ariaSeeder()
    const {json, out} = await get([torrent])
    expect(await sha256File(path.join(out, 'data.bin'))).to.equal(digest)
    expect(json.size).to.equal(12 * MiB + 12_345)
    const from = json.peers.filter((p) => p.downloaded > 0)
    expect(from.map((p) => p.address)).to.deep.equal([`${seeder.host}:${seeder.port}`])
    expect(from[0].client).to.match(/aria2/)
    // Nothing but the content is left in the target folder.
    expect(await fs.readdir(out)).to.deep.equal(['data.bin'])
  })

  it('downloads from two aria2c seeders and ours, and more than one of them uploads', async () => {
    await ariaSeeder()
    await ariaSeeder()
    // Ours limited to 2 MB/s: unlimited on loopback it would serve the whole
    // file before aria2c has answered our handshake.
    await startSeed(torrent, file, {extra: ['--upload-limit', String(2_000_000)]})
    const {json, out} = await get([torrent])
    expect(await sha256File(path.join(out, 'data.bin'))).to.equal(digest)
    const uploaders = json.peers.filter((p) => p.downloaded > 0)
    expect(uploaders.length, JSON.stringify(json.peers)).to.be.greaterThan(1)
    expect(uploaders.reduce((sum, p) => sum + p.downloaded, 0)).to.be.at.least(json.size)
  })

  it('downloads from a magnet: the metadata comes from the peers (BEP 9)', async () => {
    await ariaSeeder()
    const infoHash = (await runCli(['torrent', 'create', file, '-o', path.join(dir, 'm.torrent'), '--tracker', tracker.announce, '--json'])).stdout
    const magnet = (JSON.parse(infoHash) as {magnet: string}).magnet
    expect(magnet).to.match(/^magnet:\?xt=urn:btih:[0-9a-f]{40}/)
    const {json, out} = await get([magnet])
    expect(await sha256File(path.join(out, 'data.bin'))).to.equal(digest)
    expect(json.name).to.equal('data.bin')
  })

  it('downloads by name from the tracker pool (published by our seeder)', async () => {
    const named = await makeFile(path.join(dir, 'src2', 'report-2026.bin'), 3 * MiB + 7, 'get-pool')
    const t = await createTorrent(named, path.join(dir, 'report.torrent'), tracker.announce)
    const seed = await startSeed(t, named, {extra: ['--publish']})
    await waitFor(async () => {
      const response = await fetch(`${tracker.base}/torrents?name=report-2026.bin`)
      return ((await response.json()) as unknown[]).length > 0
    }, 'the torrent in the pool')
    const {json, out} = await get(['report-2026.bin', '--tracker', tracker.announce])
    expect(await sha256File(path.join(out, 'report-2026.bin'))).to.equal(await sha256File(named))
    expect(json.peers.filter((p) => p.downloaded > 0).map((p) => p.address)).to.deep.equal([`${seed.host}:${seed.port}`])
  })

  it('downloads into cluster:/dir: the file appears there only whole', async () => {
    await ariaSeeder()
    const dataDir = await tempDir()
    const env = {DISK_DATA_DIR: dataDir}
    expect((await runCli(['mkdir', 'cluster:/shared'], {env})).code).to.equal(0)
    const target = 'cluster:/shared'
    const result = await runCli(['torrent', 'get', torrent, '-o', target, '--host', nextLoopback(), '--timeout', '30000', '--json'], {env, timeoutMs: 110_000})
    expect(result.code, result.stderr).to.equal(0)
    const back = path.join(dir, 'back.bin')
    const download = await runCli(['download', 'cluster:/shared/data.bin', back], {env})
    expect(download.code, download.stderr).to.equal(0)
    expect(await sha256File(back)).to.equal(digest)
    await fs.rm(dataDir, {recursive: true, force: true})
  })

  it('completes from good peers when one peer sends corrupt data, and never uses that peer again', async () => {
    await ariaSeeder()
    const meta = (await import('../../src/torrent/index.js')).parseTorrent(await fs.readFile(torrent))
    const bad = await CorruptPeer.start(meta, nextLoopback())
    await bad.announce(tracker.announce)
    const host = nextLoopback()
    const {json, out} = await get([torrent], undefined, host)
    expect(await sha256File(path.join(out, 'data.bin'))).to.equal(digest)
    expect(bad.blocksSent, 'the corrupt peer was asked for data').to.be.greaterThan(0)
    expect(json.banned.map((b) => b.host)).to.deep.equal([bad.host])
    // One connection from our downloader only: once banned, it is neither dialled again nor accepted.
    expect(bad.connections.filter((from) => from === host)).to.have.length(1)
    await bad.close()
  })

  it('resumes after SIGKILL: completes identical, fetching less than the whole file', async () => {
    const big = await makeFile(path.join(dir, 'src3', 'resume.bin'), 24 * MiB, 'get-resume')
    const t = await createTorrent(big, path.join(dir, 'resume.torrent'), tracker.announce)
    const seedDir = await tempDir()
    await fs.copyFile(big, path.join(seedDir, 'resume.bin'))
    // A slow seeder, so the first run is still going when it is killed.
    await startAria(t, seedDir, 'seed', {extra: ['--max-upload-limit=4M']})
    const out = await tempDir()
    const first = track(spawnCli(['torrent', 'get', t, '-o', out, '--host', nextLoopback(), '--timeout', '30000']))
    const record = path.join(out, '.resume.bin.part', 'resume.json')
    await waitFor(async () => {
      const text = await fs.readFile(record, 'utf8').catch(() => '')
      if (!text) return false
      const bits = Buffer.from((JSON.parse(text) as {pieces: string}).pieces, 'base64')
      let set = 0
      for (const byte of bits) for (let b = 0; b < 8; b++) if (byte & (1 << b)) set++
      return set > 0
    }, 'some verified pieces on record', 60_000)
    first.kill('SIGKILL')
    await new Promise((resolve) => first.once('exit', resolve))
    expect(await fs.readdir(out)).to.deep.equal(['.resume.bin.part'])
    const {json} = await get([t], out)
    expect(await sha256File(path.join(out, 'resume.bin'))).to.equal(await sha256File(big))
    expect(json.resumed).to.be.greaterThan(0)
    expect(json.fetched).to.be.lessThan(24 * MiB)
    expect(json.fetched + json.resumed).to.be.at.least(24 * MiB)
    expect(await fs.readdir(out)).to.deep.equal(['resume.bin'])
  })

  it('fetches a folder torrent over a UDP tracker (BEP 15), then serves it with --seed to aria2c', async () => {
    const folder = path.join(dir, 'src5', 'album')
    const names = ['a.bin', 'sub/b.bin', 'sub/deeper/c.bin', 'empty.txt']
    const sizes = [1 * MiB + 3, 700_001, 2 * MiB, 0]
    for (const [i, name] of names.entries()) {
      if (sizes[i] === 0) {
        await fs.mkdir(path.dirname(path.join(folder, name)), {recursive: true})
        await fs.writeFile(path.join(folder, name), '')
      } else await makeFile(path.join(folder, name), sizes[i], `folder-${i}`)
    }
    const udp = tracker.announce.replace(/^http:/, 'udp:')
    const t = await createTorrent(folder, path.join(dir, 'album.torrent'), udp, ['--piece-length', '32768'])
    const seed = await startSeed(t, folder)
    const out = await tempDir()
    const getter = await startCli(['torrent', 'get', t, '-o', out, '--host', nextLoopback(), '--timeout', '30000', '--seed'])
    expect(getter.line).to.match(/^saved .*album/)
    for (const name of names) expect(await sha256File(path.join(out, 'album', name)), name).to.equal(await sha256File(path.join(folder, name)))
    // Our seeder gone, aria2c gets the folder from the downloader, which keeps seeding.
    seed.child.kill('SIGKILL')
    const ariaOut = await tempDir()
    // aria2c speaks to UDP trackers only with its DHT socket on.
    const aria = await startAria(t, ariaOut, 'get', {extra: ['--enable-dht=true', `--dht-file-path=${path.join(ariaOut, 'dht.dat')}`]})
    expect(await aria.exited, aria.stdout()).to.equal(0)
    for (const name of names.filter((n) => n !== 'empty.txt')) {
      expect(await sha256File(path.join(ariaOut, 'album', name)), name).to.equal(await sha256File(path.join(folder, name)))
    }
    const stopped = new Promise<number | null>((resolve) => getter.child.once('exit', (code) => resolve(code)))
    getter.child.kill('SIGINT')
    expect(await stopped).to.equal(0)
  })

  it('exits 5 with a one-line error when no peer supplies the data before --timeout', async () => {
    const lonely = await makeFile(path.join(dir, 'src4', 'lonely.bin'), 100_000, 'get-lonely')
    const t = await createTorrent(lonely, path.join(dir, 'lonely.torrent'), tracker.announce)
    const out = await tempDir()
    const started = Date.now()
    const result = await runCli(['torrent', 'get', t, '-o', out, '--host', nextLoopback(), '--timeout', '5000'], {timeoutMs: 30_000})
    expect(result.code).to.equal(5)
    const lines = result.stderr.trim().split('\n')
    expect(lines, result.stderr).to.have.length(1)
    expect(lines[0]).to.match(/^Error: no peer supplied lonely\.bin within 5000 ms/)
    expect(Date.now() - started).to.be.within(4_500, 20_000)
    expect(await fs.readdir(out)).to.not.include('lonely.bin')
  })
})
