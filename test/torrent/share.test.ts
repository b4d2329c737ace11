// `share`/`unshare` on the cluster (DESIGN.md §15): the public link is the
// magnet of a torrent registered in our tracker's pool; `share --seed`
// serves it, and aria2c fetches the file through that magnet alone.
import {expect} from 'chai'
import {once} from 'node:events'
import fs from 'node:fs/promises'
import path from 'node:path'

import {runCli, spawnCli} from '../helpers/cli.js'
import {killAll, makeFile, nextLoopback, sha256File, startAria, startTracker, tempDir, track, type Tracker, waitFor} from './helpers.js'

const MiB = 1024 * 1024

interface PoolItem {
  infoHash: string
  name: string
  size: number
}

describe('share and unshare on the cluster (torrents in the tracker pool)', function () {
  this.timeout(180_000)
  let dir: string
  let tracker: Tracker
  let env: NodeJS.ProcessEnv
  let digest: string

  async function pool(): Promise<PoolItem[]> {
    const response = await fetch(`${tracker.base}/torrents`)
    expect(response.status).to.equal(200)
    return (await response.json()) as PoolItem[]
  }

  before(async () => {
    dir = await tempDir()
    tracker = await startTracker(path.join(dir, 'tracker'))
    env = {DISK_DATA_DIR: path.join(dir, 'cluster')}
    const file = await makeFile(path.join(dir, 'src', 'film.bin'), 5 * MiB + 123, 'share-5')
    digest = await sha256File(file)
    const upload = await runCli(['upload', file, 'cluster:/media/film.bin'], {env})
    expect(upload.code, upload.stderr).to.equal(0)
  })

  afterEach(async () => {
    await killAll('test')
  })

  after(async () => {
    await killAll()
    await fs.rm(dir, {recursive: true, force: true})
  })

  it('without a tracker exits 2 and says how to configure one', async () => {
    for (const command of ['share', 'unshare']) {
      const result = await runCli([command, 'cluster:/media/film.bin'], {env})
      expect(result.code, result.stderr).to.equal(2)
      expect(result.stderr).to.match(/no tracker is configured.*DISK_TRACKER/)
    }
    const local = await runCli(['share', 'local:/x', '--tracker', tracker.announce], {env: {...env, DISK_LOCAL_ROOT: dir}})
    expect(local.code, local.stderr).to.equal(2)
    expect(local.stderr).to.include('no public links')
  })

  it('prints the magnet and registers the torrent in the pool; unshare removes it, and is idempotent', async () => {
    const result = await runCli(['share', 'cluster:/media/film.bin', '--tracker', tracker.announce, '--json'], {env})
    expect(result.code, result.stderr).to.equal(0)
    const shared = JSON.parse(result.stdout) as {path: string; url: string; infoHash: string; torrent: string}
    expect(shared.path).to.equal('/media/film.bin')
    expect(shared.infoHash).to.match(/^[0-9a-f]{40}$/)
    expect(shared.url).to.equal(`magnet:?xt=urn:btih:${shared.infoHash}&dn=film.bin&tr=${encodeURIComponent(tracker.announce)}`)
    const listed = (await pool()).find((item) => item.infoHash === shared.infoHash)
    expect(listed, 'the pool lists the shared torrent').to.include({name: 'film.bin', size: 5 * MiB + 123})
    const torrent = await fetch(shared.torrent)
    expect(torrent.status).to.equal(200)
    expect(torrent.headers.get('content-type')).to.equal('application/x-bittorrent')

    // The tracker comes from DISK_TRACKER as well as from --tracker.
    const gone = await runCli(['unshare', 'cluster:/media/film.bin', '--json'], {env: {...env, DISK_TRACKER: tracker.announce}})
    expect(gone.code, gone.stderr).to.equal(0)
    expect(JSON.parse(gone.stdout)).to.deep.equal({path: '/media/film.bin', infoHash: shared.infoHash, removed: true})
    expect((await pool()).map((item) => item.infoHash)).not.to.include(shared.infoHash)
    expect((await fetch(shared.torrent)).status).to.equal(404)

    const again = await runCli(['unshare', 'cluster:/media/film.bin', '--tracker', tracker.announce, '--json'], {env})
    expect(again.code, again.stderr).to.equal(0)
    expect(JSON.parse(again.stdout)).to.include({removed: false})
    const missing = await runCli(['share', 'cluster:/media/none.bin', '--tracker', tracker.announce], {env})
    expect(missing.code, missing.stderr).to.equal(4)
  })

  it('share --seed serves the file, and aria2c downloads it from the magnet alone, byte-identical', async () => {
    const host = nextLoopback()
    const seeder = track(spawnCli(['share', 'cluster:/media/film.bin', '--seed', '--host', host, '-p', '0'], {env: {...env, DISK_TRACKER: tracker.announce}}))
    let out = ''
    let err = ''
    seeder.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
    seeder.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
    await waitFor(
      () => {
        if (seeder.exitCode !== null) throw new Error(`share --seed exited ${seeder.exitCode}: ${out}${err}`)
        return /^seeding \S+ [0-9a-f]{40} film\.bin$/m.test(out)
      },
      'share --seed to serve',
      60_000,
    )
    const [magnet] = out.split('\n')
    expect(magnet).to.match(/^magnet:\?xt=urn:btih:[0-9a-f]{40}&dn=film\.bin&tr=/)

    // The seeder holds the embedded data dir; a CLI beside it still works.
    const listed = await runCli(['ls', 'cluster:/media', '--json'], {env, timeoutMs: 30_000})
    expect(listed.code, listed.stderr).to.equal(0)

    const target = await tempDir()
    const aria = await startAria(magnet, target, 'get')
    const code = await aria.exited
    expect(code, aria.stdout() + aria.stderr()).to.equal(0)
    expect(await sha256File(path.join(target, 'film.bin'))).to.equal(digest)

    seeder.kill('SIGINT')
    const [exit] = (await once(seeder, 'exit')) as [number | null]
    expect(exit, err).to.equal(0)
    await fs.rm(target, {recursive: true, force: true})
  })
})
