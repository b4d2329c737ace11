import {expect} from 'chai'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import path from 'node:path'

import {expectNoConsoleErrors, newWatchedPage, screenshotPath, type WatchedPage} from './browser.js'
import {startWeb, tempDirs, type WebProcess} from './helpers.js'


// `disk-client torrent tracker` is built on another branch: this stands in for
// its pool listing only, with the contract of DESIGN.md §10 (GET /torrents).
const POOL = [
  {infoHash: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3', name: 'debian-12.iso', size: 658505728, pieceLength: 262144, seeders: 3, leechers: 2, completed: 7},
  {infoHash: '0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33', name: 'фото 2026', size: 12345678, pieceLength: 16384, seeders: 1, leechers: 0, completed: 1},
]

describe('web console in Chromium: the torrents screen', function () {
  this.timeout(120_000)
  let tracker: Server
  let dirs: Awaited<ReturnType<typeof tempDirs>>
  let web: WebProcess
  let watched: WatchedPage
  let asked = 0

  before(async () => {
    tracker = createServer((req, res) => {
      if (req.url !== '/torrents') return void res.writeHead(404).end()
      asked++
      res.writeHead(200, {'Content-Type': 'application/json'}).end(JSON.stringify(POOL))
    })
    await new Promise<void>((resolve) => tracker.listen(0, '127.0.0.1', resolve))
    dirs = await tempDirs()
    const announce = `http://127.0.0.1:${(tracker.address() as AddressInfo).port}/announce`
    web = await startWeb({DISK_BACKEND: 'local', DISK_LOCAL_ROOT: dirs.localRoot, DISK_DATA_DIR: dirs.dataDir, HOME: dirs.work}, ['--tracker', announce])
    watched = await newWatchedPage()
    await watched.page.goto(web.url)
  })

  after(async () => {
    await watched?.context.close()
    await web?.stop()
    await new Promise((resolve) => tracker?.close(resolve))
    await dirs?.remove()
  })

  it("shows the tracker's pool with seeders and leechers, and the command that gets each torrent", async () => {
    const {page} = watched
    await page.click('header nav a:has-text("Torrents")')
    await page.waitForURL(/\/torrents$/)
    for (const torrent of POOL) {
      const item = page.locator(`tr[data-infohash="${torrent.infoHash}"]`)
      await item.waitFor()
      expect(await item.locator('td').first().textContent()).to.equal(torrent.name)
      expect(await item.locator('td.seeders').textContent()).to.equal(String(torrent.seeders))
      expect(await item.locator('td.leechers').textContent()).to.equal(String(torrent.leechers))
      expect(await item.locator('code').last().textContent()).to.match(/^disk-client torrent get .+ --tracker http:\/\/127\.0\.0\.1:\d+\/announce -o \.\/downloads$/)
    }
    expect(asked).to.be.at.least(1)
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
