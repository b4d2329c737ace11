import {expect} from 'chai'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {expectNoConsoleErrors, newWatchedPage, screenshotPath, type WatchedPage} from './browser.js'
import {createTorrent, killAll, makeFile, startTracker, type Tracker} from '../torrent/helpers.js'
import {startWeb, tempDirs, type WebProcess} from './helpers.js'


/** Announces a peer of `infoHash` to the tracker as a seeder (left=0) or a leecher. */
async function announce(url: string, infoHash: string, peer: string, left: number): Promise<void> {
  const escape = (hex: string) => hex.replace(/../g, (byte) => `%${byte}`)
  const query = `info_hash=${escape(infoHash)}&peer_id=${escape(Buffer.from(peer.padEnd(20, '-')).toString('hex'))}&port=6881&uploaded=0&downloaded=0&left=${left}&event=started&compact=1`
  const response = await fetch(`${url}?${query}`)
  expect(response.status).to.equal(200)
  expect(Buffer.from(await response.arrayBuffer()).toString('latin1')).not.to.include('failure reason')
}

describe('web console in Chromium: the torrents screen', function () {
  this.timeout(120_000)
  let tracker: Tracker
  let dirs: Awaited<ReturnType<typeof tempDirs>>
  let web: WebProcess
  let watched: WatchedPage
  const pool: Array<{infoHash: string; name: string; seeders: number; leechers: number}> = []

  before(async () => {
    dirs = await tempDirs()
    // The real tracker, with two torrents in its pool: one with a seeder and a leecher, one with a seeder.
    tracker = await startTracker(path.join(dirs.work, 'tracker'), 30)
    for (const [name, seeders, leechers] of [['debian-12.iso', 1, 1], ['фото 2026.bin', 1, 0]] as const) {
      const file = await makeFile(path.join(dirs.work, name), 64 * 1024, name)
      const torrent = await createTorrent(file, path.join(dirs.work, `${name}.torrent`), tracker.announce)
      const put = await fetch(`${tracker.base}/torrents`, {method: 'PUT', body: await readFile(torrent)})
      expect(put.status).to.equal(201)
      const {infoHash} = (await put.json()) as {infoHash: string}
      await announce(tracker.announce, infoHash, `seed-${pool.length}`, 0)
      if (leechers) await announce(tracker.announce, infoHash, `leech-${pool.length}`, 1000)
      pool.push({infoHash, name, seeders, leechers})
    }
    web = await startWeb({DISK_BACKEND: 'local', DISK_LOCAL_ROOT: dirs.localRoot, DISK_DATA_DIR: dirs.dataDir, HOME: dirs.work}, ['--tracker', tracker.announce])
    watched = await newWatchedPage()
    await watched.page.goto(web.url)
  })

  after(async () => {
    await watched?.context.close()
    await web?.stop()
    await killAll()
    await dirs?.remove()
  })

  it("shows the tracker's pool with seeders and leechers, and the command that gets each torrent", async () => {
    const {page} = watched
    await page.click('header nav a:has-text("Torrents")')
    await page.waitForURL(/\/torrents$/)
    for (const torrent of pool) {
      const item = page.locator(`tr[data-infohash="${torrent.infoHash}"]`)
      await item.waitFor()
      expect(await item.locator('td').first().textContent()).to.equal(torrent.name)
      expect(await item.locator('td.seeders').textContent()).to.equal(String(torrent.seeders))
      expect(await item.locator('td.leechers').textContent()).to.equal(String(torrent.leechers))
      expect(await item.locator('code').last().textContent()).to.match(/^disk-client torrent get .+ --tracker http:\/\/127\.0\.0\.1:\d+\/announce -o \.\/downloads$/)
    }
    await page.screenshot({path: screenshotPath('web-torrents.png')})
    expectNoConsoleErrors(watched)
  })

  it('has no Torrents screen without --tracker', async () => {
    const plain = await startWeb({DISK_BACKEND: 'local', DISK_LOCAL_ROOT: dirs.localRoot, DISK_DATA_DIR: dirs.dataDir, HOME: dirs.work})
    try {
      expect((await plain.authed('GET', '/torrents')).status).to.equal(404)
      expect((await plain.authed('GET', '/')).text).not.to.include('/torrents')
    } finally {
      await plain.stop()
    }
  })
})
