import {expect} from 'chai'
import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import {Readable} from 'node:stream'
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

import {runCli} from '../helpers/cli.js'
import {TestCluster} from '../helpers/cluster.js'
import {expectNoConsoleErrors, newWatchedPage, screenshotPath, type WatchedPage} from './browser.js'
import {seededChunks, startWeb, tempDirs, type WebProcess} from './helpers.js'

const run = promisify(execFile)

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Every file under `dir` as relative path → sha256. */
async function treeHashes(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {}
  for (const entry of await fs.readdir(dir, {recursive: true, withFileTypes: true})) {
    if (!entry.isFile()) continue
    const full = path.join(entry.parentPath, entry.name)
    result[path.relative(dir, full)] = await sha256File(full)
  }
  return result
}

const row = (p: string): string => `tr[data-path="${p.replace(/"/g, '\\"')}"]`

describe('web console in Chromium: home, upload, download, cluster', function () {
  this.timeout(180_000)
  let dirs: Awaited<ReturnType<typeof tempDirs>>
  let cluster: TestCluster
  let env: NodeJS.ProcessEnv
  let web: WebProcess
  let watched: WatchedPage
  const fixtures = (...parts: string[]): string => path.join(dirs.work, 'fixtures', ...parts)

  async function cli(args: string[]): Promise<string> {
    const result = await runCli(args, {env, cwd: dirs.work, timeoutMs: 120_000})
    expect(result.code, `disk-client ${args.join(' ')}: ${result.stderr}`).to.equal(0)
    return result.stdout
  }

  before(async function () {
    this.timeout(300_000)
    dirs = await tempDirs()
    cluster = await TestCluster.start({servers: 3, replicas: 2})
    env = {DISK_CLUSTER: cluster.routerAddress, DISK_LOCAL_ROOT: dirs.localRoot, DISK_DATA_DIR: dirs.dataDir, HOME: dirs.work}
    await fs.mkdir(fixtures('photos'), {recursive: true})
    await fs.mkdir(fixtures('tree', 'nested', 'deeper'), {recursive: true})
    await fs.writeFile(fixtures('readme.txt'), 'read me\n')
    await fs.writeFile(fixtures('Отчёт №1.txt'), 'квартальный отчёт\n'.repeat(100))
    await fs.writeFile(fixtures('photos', 'cat.txt'), 'a cat\n')
    await fs.writeFile(fixtures('tree', 'top.txt'), 'top\n')
    await fs.writeFile(fixtures('tree', 'nested', 'middle.bin'), Buffer.concat([...seededChunks(300_000, 7)]))
    await fs.writeFile(fixtures('tree', 'nested', 'deeper', 'bottom — ü.txt'), 'bottom\n')
    await fs.writeFile(path.join(dirs.localRoot, 'local-note.txt'), 'from the local backend\n')
    await cli(['upload', fixtures('readme.txt'), '/readme.txt'])
    await cli(['upload', fixtures('Отчёт №1.txt'), '/Отчёт №1.txt'])
    await cli(['upload', fixtures('photos'), '/photos'])
    await cli(['upload', fixtures('tree'), '/tree'])
    web = await startWeb(env)
    watched = await newWatchedPage()
    await watched.page.goto(web.url)
  })

  after(async () => {
    await watched?.context.close()
    await web?.stop()
    await cluster?.stop()
    await dirs?.remove()
  })

  it('lists the files uploaded with the CLI (name, size, modified)', async () => {
    const {page} = watched
    expect(new URL(page.url()).search, 'the token is stripped from the address').to.equal('')
    await page.locator(row('/readme.txt')).waitFor()
    expect(await page.locator(row('/photos')).getAttribute('data-type')).to.equal('dir')
    expect(await page.locator(row('/readme.txt')).getAttribute('data-type')).to.equal('file')
    expect(await page.locator(`${row('/readme.txt')} td.size span`).getAttribute('title')).to.equal('8 bytes')
    expect(await page.locator(`${row('/Отчёт №1.txt')} td.modified`).textContent()).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)
    expect(await page.locator('tr[data-path]').count()).to.equal(4)
    await page.screenshot({path: screenshotPath('web-home.png')})
    expectNoConsoleErrors(watched)
  })

  it('sorts the listing by size', async () => {
    const {page} = watched
    await page.click('a[data-sort="size"]')
    await page.waitForURL(/sort=size/)
    const files = await page.locator('tr[data-type="file"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-path')))
    expect(files).to.deep.equal(['/readme.txt', '/Отчёт №1.txt'])
    await page.click('a[data-sort="size"]')
    await page.waitForURL(/order=desc/)
    const reversed = await page.locator('tr[data-type="file"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-path')))
    expect(reversed).to.deep.equal(['/Отчёт №1.txt', '/readme.txt'])
    expectNoConsoleErrors(watched)
  })

  it('navigates into a folder and back by the breadcrumbs', async () => {
    const {page} = watched
    await page.click(`${row('/photos')} td.name a`)
    await page.locator(row('/photos/cat.txt')).waitFor()
    await page.click('nav.breadcrumbs a >> nth=0')
    await page.locator(row('/readme.txt')).waitFor()
    await page.click(`${row('/photos')} td.name a`)
    await page.locator(row('/photos/cat.txt')).waitFor()
    expectNoConsoleErrors(watched)
  })

  it('creates a folder, shows the command, and the CLI sees it', async () => {
    const {page} = watched
    page.once('dialog', (dialog) => void dialog.accept('new folder'))
    await page.click('button[data-action="mkdir"]')
    await page.locator(row('/photos/new folder')).waitFor()
    await page.locator('#commands code', {hasText: "disk-client mkdir '/photos/new folder'"}).waitFor()
    const entry = JSON.parse(await cli(['stat', '/photos/new folder', '--json'])) as {type: string}
    expect(entry.type).to.equal('dir')
    expectNoConsoleErrors(watched)
  })

  it('uploads a 16 MiB file through the upload screen with moving <progress>, and the CLI downloads it identical', async () => {
    const {page} = watched
    const local = path.join(dirs.work, 'sixteen.bin')
    await pipeline(Readable.from(seededChunks(16 * 1024 * 1024, 16)), createWriteStream(local))
    await page.click('a[data-action="upload"]')
    await page.waitForURL(/\/upload\?path=%2Fphotos/)
    // Records every value the overall <progress> takes.
    // Records every value the overall <progress> takes (a string: the tests have no DOM types).
    await page.evaluate(`{
      const overall = document.getElementById('overall')
      window.seen = [overall.getAttribute('value') + '/' + overall.getAttribute('max')]
      new MutationObserver(() => window.seen.push(overall.getAttribute('value') + '/' + overall.getAttribute('max'))).observe(overall, {attributes: true})
    }`)
    await page.setInputFiles('#files', local)
    await page.locator('#queue li[data-state="done"]').waitFor({timeout: 120_000})
    const seen = (await page.evaluate('window.seen')) as string[]
    const fractions = seen.map((s) => s.split('/').map(Number)).map(([v, m]) => v / m)
    expect(fractions[0], seen.join(' ')).to.be.below(1)
    expect(fractions.at(-1), seen.join(' ')).to.equal(1)
    expect(new Set(fractions).size, seen.join(' ')).to.be.at.least(2)
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]).to.be.at.least(fractions[i - 1])
    console.log(`      overall <progress> took ${new Set(fractions).size} distinct values: ${[...new Set(fractions)].map((f) => f.toFixed(2)).join(' ')}`)
    expect(await page.locator('#queue li[data-state="done"] progress').getAttribute('value')).to.equal(String(16 * 1024 * 1024))
    await page.locator('#commands code', {hasText: 'disk-client upload ./sixteen.bin /photos/sixteen.bin'}).waitFor()
    await page.screenshot({path: screenshotPath('web-upload.png')})
    await cli(['download', '/photos/sixteen.bin', path.join(dirs.work, 'sixteen.back')])
    expect(await sha256File(path.join(dirs.work, 'sixteen.back'))).to.equal(await sha256File(local))
    expectNoConsoleErrors(watched)
  })

  it('downloads files (a non-ASCII name among them) identical, with the right names', async () => {
    const {page} = watched
    await page.goto(`${web.origin}/`)
    for (const name of ['readme.txt', 'Отчёт №1.txt']) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(`${row('/' + name)} a[data-action="download"]`)])
      expect(download.suggestedFilename()).to.equal(name)
      const saved = path.join(dirs.work, `downloaded-${name}`)
      await download.saveAs(saved)
      expect(await fs.readFile(saved)).to.deep.equal(await fs.readFile(fixtures(name)))
    }
    await page.click(`${row('/Отчёт №1.txt')} td.name a`)
    await page.waitForURL(/\/download\?/)
    await page.screenshot({path: screenshotPath('web-download.png')})
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.button[data-action="download"]')])
    expect(download.suggestedFilename()).to.equal('Отчёт №1.txt')
    expectNoConsoleErrors(watched)
  })

  it('downloads a folder as a zip whose contents are identical', async () => {
    const {page} = watched
    await page.goto(`${web.origin}/`)
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(`${row('/tree')} a[data-action="download"]`)])
    expect(download.suggestedFilename()).to.equal('tree.zip')
    const zip = path.join(dirs.work, 'tree.zip')
    await download.saveAs(zip)
    const out = path.join(dirs.work, 'unzipped')
    await fs.mkdir(out)
    await run('unzip', ['-q', zip, '-d', out])
    expect(await treeHashes(path.join(out, 'tree'))).to.deep.equal(await treeHashes(fixtures('tree')))
    expect(Object.keys(await treeHashes(fixtures('tree')))).to.have.length(3)
    expectNoConsoleErrors(watched)
  })

  it('renames a file, and the CLI sees the new name', async () => {
    const {page} = watched
    await page.goto(`${web.origin}/`)
    await page.check(`${row('/readme.txt')} input.select`)
    page.once('dialog', (dialog) => void dialog.accept('renamed.txt'))
    await page.click('button[data-action="rename"]')
    await page.locator(row('/renamed.txt')).waitFor()
    const names = (JSON.parse(await cli(['ls', '/', '--json'])) as Array<{name: string}>).map((e) => e.name)
    expect(names).to.include('renamed.txt').and.not.include('readme.txt')
    await page.locator('#commands code', {hasText: 'disk-client mv /readme.txt /renamed.txt'}).waitFor()
    expectNoConsoleErrors(watched)
  })

  it('deletes after a confirmation, and the CLI no longer finds it', async () => {
    const {page} = watched
    await page.check(`${row('/renamed.txt')} input.select`)
    let asked = ''
    page.once('dialog', (dialog) => {
      asked = dialog.message()
      void dialog.accept()
    })
    await page.click('button[data-action="delete"]')
    await page.locator('#commands code', {hasText: 'disk-client rm /renamed.txt'}).waitFor()
    expect(await page.locator(row('/renamed.txt')).count()).to.equal(0)
    expect(asked).to.include('/renamed.txt')
    const stat = await runCli(['stat', '/renamed.txt'], {env})
    expect(stat.code).to.equal(4)
    expectNoConsoleErrors(watched)
  })

  it('copies from local: to the cluster through the backend chooser, and the CLI downloads the copy', async () => {
    const {page} = watched
    await page.goto(`${web.origin}/`)
    await Promise.all([page.waitForURL(/path=local%3A%2F/), page.selectOption('#backend', 'local')])
    await page.check(`${row('local:/local-note.txt')} input.select`)
    page.once('dialog', (dialog) => void dialog.accept('cluster:/photos'))
    await page.click('button[data-action="copy"]')
    await page.locator('#commands code', {hasText: 'disk-client cp local:/local-note.txt cluster:/photos'}).waitFor()
    await cli(['download', '/photos/local-note.txt', path.join(dirs.work, 'note.back')])
    expect(await fs.readFile(path.join(dirs.work, 'note.back'), 'utf8')).to.equal('from the local backend\n')
    expect(await fs.readFile(path.join(dirs.localRoot, 'local-note.txt'), 'utf8')).to.equal('from the local backend\n')
    expectNoConsoleErrors(watched)
  })

  it('GET /api/cluster answers what cluster status --json prints', async () => {
    const api = await web.authed('GET', '/api/cluster')
    expect(api.status, api.text).to.equal(200)
    const status = JSON.parse(await cli(['cluster', 'status', '--router', cluster.routerAddress, '--json']))
    const shape = (status: {servers: number; replicas: number; members: Array<Record<string, unknown>>}) => ({
      servers: status.servers,
      replicas: status.replicas,
      members: status.members.map((m) => ({number: m.number, addr: m.addr, state: m.state, hasDisk: typeof m.disk_total === 'number'})),
    })
    expect(shape(JSON.parse(api.text))).to.deep.equal(shape(status))
    expect(shape(status).members.map((m) => m.state)).to.deep.equal(['up', 'up', 'up'])
    expect(shape(status).members.every((m) => m.hasDisk)).to.equal(true)
  })

  it('shows the three servers, and one killed turns data-state="down" within 10 s without a reload', async () => {
    const {page} = watched
    await page.goto(`${web.origin}/cluster`)
    for (const n of [0, 1, 2]) await page.locator(`[data-server="${n}"][data-state="up"]`).waitFor()
    await page.locator('#cluster-live', {hasText: 'live'}).waitFor()
    await page.screenshot({path: screenshotPath('web-cluster.png')})
    await page.evaluate(`window.marker = 'no reload'`)
    await cluster.killServer(2)
    const killed = Date.now()
    await page.locator('[data-server="2"][data-state="down"]').waitFor({timeout: 10_000})
    const took = Date.now() - killed
    expect(took).to.be.below(10_000)
    expect(await page.evaluate('window.marker')).to.equal('no reload')
    expect(await page.locator('[data-server="0"]').getAttribute('data-state')).to.equal('up')
    await page.screenshot({path: screenshotPath('web-cluster-down.png')})
    expectNoConsoleErrors(watched)
  })
})
