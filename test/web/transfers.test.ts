import {expect} from 'chai'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import fs from 'node:fs/promises'
import {request} from 'node:http'
import path from 'node:path'

import {runCli} from '../helpers/cli.js'
import {expectNoConsoleErrors, newWatchedPage, type WatchedPage} from './browser.js'
import {rawRequest, seededChunks, startWeb, tempDirs, type WebProcess} from './helpers.js'

async function treeHashes(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {}
  for (const entry of await fs.readdir(dir, {recursive: true, withFileTypes: true})) {
    if (!entry.isFile()) continue
    const full = path.join(entry.parentPath, entry.name)
    const hash = createHash('sha256')
    for await (const chunk of createReadStream(full)) hash.update(chunk as Buffer)
    result[path.relative(dir, full)] = hash.digest('hex')
  }
  return result
}

describe('web console: folder uploads, cancelled uploads, a wider bind', function () {
  this.timeout(120_000)
  let dirs: Awaited<ReturnType<typeof tempDirs>>
  let env: NodeJS.ProcessEnv
  let web: WebProcess
  let watched: WatchedPage

  before(async () => {
    dirs = await tempDirs()
    env = {DISK_BACKEND: 'local', DISK_LOCAL_ROOT: dirs.localRoot, DISK_DATA_DIR: dirs.dataDir, HOME: dirs.work}
    const tree = path.join(dirs.work, 'album')
    await fs.mkdir(path.join(tree, 'day 1', 'raw'), {recursive: true})
    await fs.writeFile(path.join(tree, 'index.txt'), 'album\n')
    await fs.writeFile(path.join(tree, 'day 1', 'ёж.txt'), 'hedgehog\n')
    await fs.writeFile(path.join(tree, 'day 1', 'raw', 'img.bin'), Buffer.concat([...seededChunks(1_500_000, 3)]))
    await fs.writeFile(path.join(dirs.work, 'small.txt'), 'small\n')
    web = await startWeb(env)
    watched = await newWatchedPage()
    await watched.page.goto(web.url)
  })

  after(async () => {
    await watched?.context.close()
    await web?.stop()
    await dirs?.remove()
  })

  it('uploads a whole folder through the webkitdirectory input, and the CLI downloads it identical', async () => {
    const {page} = watched
    await page.goto(`${web.origin}/upload?path=%2F`)
    await page.setInputFiles('#folder', path.join(dirs.work, 'album'))
    await page.locator('#queue li[data-state="done"]').nth(2).waitFor({timeout: 60_000})
    expect(await page.locator('#queue li').count()).to.equal(3)
    expect(await page.locator('#overall').getAttribute('value')).to.equal(await page.locator('#overall').getAttribute('max'))
    const back = await runCli(['download', '/album', path.join(dirs.work, 'album.back')], {env})
    expect(back.code, back.stderr).to.equal(0)
    expect(await treeHashes(path.join(dirs.work, 'album.back'))).to.deep.equal(await treeHashes(path.join(dirs.work, 'album')))
    expectNoConsoleErrors(watched)
  })

  it('cancels an upload in flight: the row says cancelled and no file appears', async () => {
    const {page} = watched
    await page.goto(`${web.origin}/upload?path=%2F`)
    // Holds the first PUT in the browser, so the cancel lands while it is in flight whatever the
    // machine's load; later ones go through. The route stays until the end: no unroute races the abort.
    const held: unknown[] = []
    await page.route('**/api/file?*', (route) => {
      if (held.length === 0) held.push(route)
      else void route.continue()
    })
    try {
      await page.setInputFiles('#files', path.join(dirs.work, 'small.txt'))
      await page.locator('#queue li[data-state="uploading"]').waitFor()
      await page.click('#queue li[data-state="uploading"] button[data-action="cancel"]')
      await page.locator('#queue li[data-state="cancelled"]').waitFor()
      expect(held).to.have.length(1)
      const missing = await runCli(['stat', '/small.txt'], {env})
      expect(missing.code, missing.stdout + missing.stderr).to.equal(4)
      // The queue goes on after a cancel.
      await page.setInputFiles('#files', path.join(dirs.work, 'small.txt'))
      await page.locator('#queue li[data-state="done"]').waitFor()
      const present = await runCli(['stat', '/small.txt'], {env})
      expect(present.code, present.stderr).to.equal(0)
      expect(await page.locator('#queue li[data-state="cancelled"]').count()).to.equal(1)
    } finally {
      await page.unroute('**/api/file?*')
    }
    expectNoConsoleErrors(watched)
  })

  it('uploads files dropped on the drop zone', async () => {
    const {page} = watched
    await page.goto(`${web.origin}/upload?path=%2F`)
    // A drop as the browser delivers one: a DataTransfer with two files, on the drop zone.
    await page.evaluate(`{
      const transfer = new DataTransfer()
      transfer.items.add(new File(['first dropped file\\n'], 'one.txt'))
      transfer.items.add(new File(['second, ünïcode\\n'], 'twö.txt'))
      const zone = document.getElementById('drop')
      zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true, cancelable: true}))
      zone.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}))
    }`)
    await page.locator('#queue li[data-file="twö.txt"][data-state="done"]').waitFor()
    await page.locator('#queue li[data-file="one.txt"][data-state="done"]').waitFor()
    expect(await fs.readFile(path.join(dirs.localRoot, 'one.txt'), 'utf8')).to.equal('first dropped file\n')
    const stat = await runCli(['stat', '/twö.txt', '--json'], {env})
    expect(JSON.parse(stat.stdout)).to.include({type: 'file', size: Buffer.byteLength('second, ünïcode\n')})
    expectNoConsoleErrors(watched)
  })

  it('keeps no partial file when an upload is cut off, and keeps serving', async () => {
    await new Promise<void>((resolve) => {
      const req = request({
        host: '127.0.0.1',
        port: web.port,
        method: 'PUT',
        path: '/api/file?path=%2Fcut.bin',
        headers: {Host: `${web.host}:${web.port}`, Cookie: web.cookie, 'X-CSRF-Token': web.csrf, 'Content-Length': String(8 << 20)},
      })
      req.on('error', () => resolve())
      req.write(Buffer.alloc(1 << 20), () => setTimeout(() => req.destroy(), 200))
      req.on('close', () => resolve())
    })
    const deadline = Date.now() + 20_000
    for (;;) {
      const names = await fs.readdir(dirs.localRoot)
      if (!names.some((name) => name.startsWith('.disk-client-') || name === 'cut.bin')) break
      expect(Date.now(), `left behind: ${names.join(', ')}`).to.be.below(deadline)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const ls = await web.authed('GET', '/api/ls?path=/')
    expect(ls.status).to.equal(200)
    expect((JSON.parse(ls.text) as Array<{name: string}>).map((e) => e.name)).not.to.include('cut.bin')
  })

  it('warns on stderr when bound wider than loopback, and still checks the Host header', async () => {
    const wide = await startWeb(env, ['--host', '0.0.0.0'])
    try {
      expect(wide.url).to.match(/^http:\/\/0\.0\.0\.0:\d+\/\?token=/)
      const deadline = Date.now() + 10_000
      while (!wide.stderr().includes('warning') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      expect(wide.stderr()).to.match(/^warning: listening on 0\.0\.0\.0/m)
      const loopback = await rawRequest(wide.port, 'GET', '/api/ls?path=/', {headers: {Host: `127.0.0.1:${wide.port}`}})
      expect(loopback.status, 'an interface address passes the Host check; no cookie is 401').to.equal(401)
      const foreign = await rawRequest(wide.port, 'GET', '/api/ls?path=/', {headers: {Host: `attacker.example:${wide.port}`}})
      expect(foreign.status).to.equal(421)
    } finally {
      await wide.stop()
    }
  })
})
