// Acceptance: an aria2c seeder and an aria2c leecher, each on its own
// loopback address, find each other through our tracker alone: over HTTP
// with DHT, LPD and peer exchange off; over UDP (BEP 15) likewise, except
// that aria2c sends UDP tracker requests only from its DHT socket, so DHT is
// on there, with fresh routing tables and no entry point (it knows no node).
import {expect} from 'chai'
import fs from 'node:fs/promises'
import path from 'node:path'

import {bdecode, parseTorrent} from '../../src/torrent/index.js'
import {createTorrent, killAll, makeFile, sha256File, startAria, startTracker, type Tracker, tempDir, waitFor} from './helpers.js'
import {query, request} from './tracker-client.js'

interface Counts {
  complete: number
  incomplete: number
  downloaded: number
}

async function scrape(tracker: Tracker, infoHash: Buffer): Promise<Counts> {
  const reply = bdecode((await request(`${tracker.base}/scrape?${query({info_hash: infoHash})}`)).body) as unknown as {files: Record<string, Counts>}
  return reply.files[infoHash.toString('latin1')]
}

describe('torrent tracker with aria2c', function () {
  this.timeout(120_000)
  let work: string
  let tracker: Tracker
  let source: string
  const size = 8 * 2 ** 20 + 12_345

  before(async () => {
    work = await tempDir('disk-client-tracker-aria-')
    source = await makeFile(path.join(work, 'seed', 'shared.bin'), size, 'tracker-interop')
  })

  beforeEach(async () => {
    tracker = await startTracker(path.join(work, `tracker-${Date.now()}`), 2)
  })

  afterEach(async () => {
    await killAll()
  })

  after(async () => {
    await fs.rm(work, {recursive: true, force: true})
  })

  for (const protocol of ['http', 'udp'] as const) {
    it(`lets an aria2c seeder and an aria2c leecher find each other through it alone (${protocol})`, async () => {
      const url = protocol === 'http' ? tracker.announce : tracker.announce.replace(/^http:/, 'udp:')
      const torrentFile = await createTorrent(source, path.join(work, `shared-${protocol}.torrent`), url)
      const {infoHash} = parseTorrent(await fs.readFile(torrentFile))

      const dht = (name: string): string[] =>
        protocol === 'udp' ? ['--enable-dht=true', `--dht-file-path=${path.join(work, `${name}-${Date.now()}.dht`)}`] : []
      const seeder = await startAria(torrentFile, path.join(work, 'seed'), 'seed', {extra: dht('seeder')})
      await waitFor(async () => (await scrape(tracker, infoHash))?.complete === 1, 'the aria2c seeder to announce', 60_000, 200)

      const leechDir = path.join(work, `leech-${protocol}`)
      const leecher = await startAria(torrentFile, leechDir, 'get', {extra: dht('leecher')})
      const code = await Promise.race([leecher.exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 90_000))])
      expect(code, leecher.stdout() + leecher.stderr()).to.equal(0)
      expect(await sha256File(path.join(leechDir, 'shared.bin'))).to.equal(await sha256File(source))
      expect(seeder.host).to.not.equal(leecher.host)
      // The seeder is still listed; the leecher said stopped (aria2c with --seed-time=0 sends no completed).
      expect(await scrape(tracker, infoHash)).to.deep.equal({complete: 1, incomplete: 0, downloaded: 0})
    })
  }
})
