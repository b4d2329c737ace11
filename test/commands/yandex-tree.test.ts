// Whole trees to and from Yandex.Disk through the CLI, counting the requests
// each file costs (DESIGN.md §4, "Downloading a tree"): the listing, then per
// file one GET /resources/download and its href, and no per-file stat; an
// upload costs its link, the PUT and the verifying stat. Links resolved
// ahead are used once; a failure gets a new link.
import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import nock from 'nock'

import {FakeYandexDisk, type RecordedRequest} from '../backends/yandex/fake-disk.js'
import type {CliResult} from '../helpers/cli.js'
import {runInProcess} from '../helpers/in-process.js'

const FILES = 24

describe('tree transfers through the CLI (yandex backend, nock): requests per file', function () {
  this.timeout(30_000)
  let disk: FakeYandexDisk
  let work: string
  let env: NodeJS.ProcessEnv
  const contents = new Map<string, Buffer>()
  const cli = (...args: string[]): Promise<CliResult> => runInProcess(args, env)
  const api = (route: string) => (r: RecordedRequest) => r.host === 'api' && r.uri.startsWith(`/v1/disk${route}?`)
  const pathOf = (r: RecordedRequest) => new URL(r.uri, 'https://x.invalid').searchParams.get('path')

  /** 24 files: 16 at the top, 8 in a subdirectory. */
  function fillDisk(): void {
    disk.addDir('/tree').addDir('/tree/sub')
    for (let i = 0; i < FILES; i++) {
      const file = i < 16 ? `/tree/f${i}.bin` : `/tree/sub/g${i}.bin`
      const content = randomBytes(1000 + i)
      contents.set(file, content)
      disk.addFile(file, content)
    }
  }

  async function expectLocalCopy(root: string): Promise<void> {
    for (const [file, content] of contents) {
      const local = await fs.readFile(path.join(root, file.slice('/tree/'.length)))
      expect(local.equals(content), file).to.equal(true)
    }

    const leftovers = (await fs.readdir(root, {recursive: true})).filter((name) => name.includes('.partial'))
    expect(leftovers).to.deep.equal([])
  }

  beforeEach(async () => {
    contents.clear()
    disk = new FakeYandexDisk({operationPolls: 1}).start()
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-ytree-'))
    env = {HOME: work, DISK_BACKEND: 'yandex', YANDEX_DISK_TOKEN: disk.token, YANDEX_DISK_API_URL: disk.apiUrl, DISK_RETRY_BASE_MS: '5'}
  })

  afterEach(async () => {
    disk.stop()
    nock.cleanAll()
    disk.done()
    await fs.rm(work, {recursive: true, force: true})
  })

  it('downloads a tree with the listing plus, per file, one download link and its href: no per-file stat', async () => {
    fillDisk()
    const result = await cli('download', 'yandex:/tree', path.join(work, 'out'), '--transfers', '4')
    expect(result.code, result.stderr).to.equal(0)
    await expectLocalCopy(path.join(work, 'out'))

    const links = disk.requests.filter(api('/resources/download'))
    expect(links).to.have.length(FILES)
    expect(new Set(links.map(pathOf)).size).to.equal(FILES)
    const fileStats = disk.requests.filter(api('/resources')).filter((r) => contents.has(pathOf(r)?.replace(/^disk:/, '') ?? ''))
    expect(fileStats, 'per-file stats').to.deep.equal([])
    const hrefs = disk.requests.filter((r) => r.host === 'download')
    expect(hrefs).to.have.length(FILES)
    // The href redirects to the storage host, as the real service does: that hop is the href's, not a request of ours.
    expect(disk.requests.filter((r) => r.host === 'storage')).to.have.length(FILES)
    const perFile = links.length + hrefs.length
    const overhead = disk.requests.filter((r) => r.host === 'api').length - links.length
    expect(perFile / FILES).to.be.at.most(2)
    // The rest: a stat of /tree, which brings its first page along, and the listing of /tree/sub.
    expect(overhead).to.equal(2)
  })

  it('uploads a tree with, per file, its upload link, the PUT and the verifying stat', async () => {
    const local = path.join(work, 'in')
    await fs.mkdir(path.join(local, 'sub'), {recursive: true})
    for (let i = 0; i < FILES; i++) {
      const name = i < 16 ? `f${i}.bin` : `sub/g${i}.bin`
      const content = randomBytes(1000 + i)
      contents.set(`/up/${name}`, content)
      await fs.writeFile(path.join(local, name), content)
    }

    const result = await cli('upload', local, 'yandex:/up', '--transfers', '4')
    expect(result.code, result.stderr).to.equal(0)
    for (const [file, content] of contents) expect(disk.read(file)?.equals(content), file).to.equal(true)

    const links = disk.requests.filter(api('/resources/upload'))
    const puts = disk.requests.filter((r) => r.host === 'upload')
    const fileStats = disk.requests.filter(api('/resources')).filter((r) => r.method === 'GET' && contents.has(pathOf(r)?.replace(/^disk:/, '') ?? ''))
    expect([links.length, puts.length, fileStats.length]).to.deep.equal([FILES, FILES, FILES])
    expect(new Set(puts.map((r) => r.uri)).size).to.equal(FILES)
  })

  it('asks for a new download link when one resolved ahead fails, and still verifies every file', async () => {
    fillDisk()
    disk.inject({host: 'download', status: 410, body: 'Gone'})
    const result = await cli('download', 'yandex:/tree', path.join(work, 'out'), '--transfers', '2')
    expect(result.code, result.stderr).to.equal(0)
    await expectLocalCopy(path.join(work, 'out'))
    const links = disk.requests.filter(api('/resources/download'))
    expect(links).to.have.length(FILES + 1)
    const hrefs = disk.requests.filter((r) => r.host === 'download').map((r) => r.uri)
    expect(new Set(hrefs).size).to.equal(FILES + 1)
  })

  it('retries a failed upload with a new link, not the one resolved ahead', async () => {
    const local = path.join(work, 'in')
    await fs.mkdir(local)
    for (let i = 0; i < 6; i++) await fs.writeFile(path.join(local, `f${i}.txt`), `file ${i}`)
    disk.inject({host: 'upload', status: 503, body: 'Service Unavailable'})
    const result = await cli('upload', local, 'yandex:/up', '--transfers', '2')
    expect(result.code, result.stderr).to.equal(0)
    for (let i = 0; i < 6; i++) expect(disk.read(`/up/f${i}.txt`)?.toString()).to.equal(`file ${i}`)
    const links = disk.requests.filter(api('/resources/upload'))
    expect(links).to.have.length(7)
    const puts = disk.requests.filter((r) => r.host === 'upload').map((r) => r.uri)
    expect(puts).to.have.length(7)
    expect(new Set(puts).size).to.equal(7)
  })

  it('a file whose content changed since the listing fails its hash and leaves no file behind', async () => {
    fillDisk()
    // The listing and the content disagree from now on: the stand-in keeps the old hashes.
    const node = disk.tree.get('/tree/f3.bin')!
    node.content = Buffer.from('changed after listing')
    const result = await cli('download', 'yandex:/tree', path.join(work, 'out'), '--retries', '1')
    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/f3\.bin.*mismatch/)
    const kept = await fs.access(path.join(work, 'out/f3.bin')).then(() => true, () => false)
    expect(kept).to.equal(false)
    await fs.access(path.join(work, 'out/f4.bin'))
    const leftovers = (await fs.readdir(path.join(work, 'out'), {recursive: true})).filter((name) => name.includes('.partial'))
    expect(leftovers).to.deep.equal([])
  })
})
