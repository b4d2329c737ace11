// Tree transfers with links resolved ahead (src/ops/transfer.ts), from the
// Yandex stand-in (nock) to a real folder: what happens when the world
// changes between the look-ahead and the transfer.
import {expect} from 'chai'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import nock from 'nock'

import {WHOLE_FILE_BYTES, type Entry, type Prepared, type ReadOptions, type StorageAdapter} from '../../src/backends/adapter.js'
import {NotFoundError} from '../../src/base/index.js'
import {LocalBackend} from '../../src/backends/local/index.js'
import {YandexBackend} from '../../src/backends/yandex/index.js'
import {transfer} from '../../src/ops/transfer.js'
import {FakeYandexDisk} from '../backends/yandex/fake-disk.js'

describe('tree transfers with links resolved ahead', function () {
  this.timeout(20_000)
  let fake: FakeYandexDisk
  let work: string

  beforeEach(async () => {
    fake = new FakeYandexDisk().start()
    fake.addDir('/tree')
    for (let i = 0; i < 6; i++) fake.addFile(`/tree/f${i}.txt`, `file ${i}`)
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-ahead-'))
  })

  afterEach(async () => {
    fake.stop()
    nock.cleanAll()
    fake.done()
    await fs.rm(work, {recursive: true, force: true})
  })

  /** Deletes /tree/f2.txt from the Disk right after its download link was resolved ahead. */
  class DeletingAfterPrepare extends YandexBackend {
    override async prepareRead(entry: Entry, options?: ReadOptions): Promise<Prepared> {
      const prepared = await super.prepareRead(entry, options)
      if (entry.path === '/tree/f2.txt') fake.tree.delete(entry.path)
      return prepared
    }
  }

  it('reports a file deleted after its link was resolved as not found, and copies the others', async () => {
    const yandex = new DeletingAfterPrepare({token: fake.token, apiUrl: fake.apiUrl, retries: 0, retryBaseMs: 1})
    const host = new LocalBackend(work)
    let error: unknown
    try {
      await transfer({adapter: yandex, backend: 'yandex', path: '/tree'}, {adapter: host, backend: 'host', path: '/out'}, 'copy', {retries: 1, retryBaseMs: 1})
    } catch (caught) {
      error = caught
    }

    expect(error).to.be.instanceOf(NotFoundError)
    expect((error as Error).message).to.match(/1 of 6 files failed.*f2\.txt/)
    expect((await fs.readdir(path.join(work, 'out'))).sort()).to.deep.equal(['f0.txt', 'f1.txt', 'f3.txt', 'f4.txt', 'f5.txt'])
    expect(await fs.readFile(path.join(work, 'out/f5.txt'), 'utf8')).to.equal('file 5')
    // The prepared link failed, so a new one was asked for before giving up.
    const links = fake.requests.filter((r) => r.uri.startsWith('/v1/disk/resources/download?') && r.uri.includes('f2.txt'))
    expect(links).to.have.length(2)
  })

  it('leaves an existing destination file alone, and no temporary file, when its source vanished after the look-ahead', async () => {
    await fs.mkdir(path.join(work, 'out/tree'), {recursive: true})
    await fs.writeFile(path.join(work, 'out/tree/f2.txt'), 'precious')
    const yandex = new DeletingAfterPrepare({token: fake.token, apiUrl: fake.apiUrl, retries: 0, retryBaseMs: 1})
    const error = await transfer({adapter: yandex, backend: 'yandex', path: '/tree'}, {adapter: new LocalBackend(work), backend: 'host', path: '/out'}, 'copy', {
      overwrite: true,
      retries: 0,
    }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).to.be.instanceOf(NotFoundError)
    expect(await fs.readFile(path.join(work, 'out/tree/f2.txt'), 'utf8')).to.equal('precious')
    expect((await fs.readdir(path.join(work, 'out/tree'))).sort()).to.deep.equal(['f0.txt', 'f1.txt', 'f2.txt', 'f3.txt', 'f4.txt', 'f5.txt'])
    expect(await fs.readFile(path.join(work, 'out/tree/f3.txt'), 'utf8')).to.equal('file 3')
  })
})

describe('small files moved whole (readWhole/writeWhole)', function () {
  this.timeout(20_000)
  const sizes = [0, 1, WHOLE_FILE_BYTES - 1, WHOLE_FILE_BYTES, WHOLE_FILE_BYTES + 1, 300_000]
  let work: string

  beforeEach(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-whole-'))
    await fs.mkdir(path.join(work, 'src/sub'), {recursive: true})
    for (const size of sizes) {
      const data = Buffer.alloc(size)
      for (let i = 0; i < size; i++) data[i] = (i * 7 + size) & 0xff
      await fs.writeFile(path.join(work, 'src/sub', `f${size}`), data)
    }
  })

  afterEach(() => fs.rm(work, {recursive: true, force: true}))

  const copyTree = (from: StorageAdapter, to: StorageAdapter) =>
    transfer({adapter: from, backend: 'host', path: '/src'}, {adapter: to, backend: 'host', path: '/out'}, 'copy', {retries: 1, retryBaseMs: 1})

  async function expectSameTree(): Promise<void> {
    for (const size of sizes) {
      const copied = await fs.readFile(path.join(work, 'out/sub', `f${size}`))
      expect(copied.equals(await fs.readFile(path.join(work, 'src/sub', `f${size}`))), `f${size}`).to.equal(true)
    }
    expect((await fs.readdir(path.join(work, 'out/sub'))).sort()).to.deep.equal(sizes.map((size) => `f${size}`).sort())
  }

  it('copies files on both sides of the size limit byte-exact, with no temporary file left', async () => {
    // Two backends over the same folder: a copy within one backend would be its server-side copy.
    const result = await copyTree(new LocalBackend(work), new LocalBackend(work))
    expect(result).to.include({files: sizes.length, bytes: sizes.reduce((a, b) => a + b, 0)})
    await expectSameTree()
  })

  it('streams into a destination that cannot take a file whole', async () => {
    const streamOnly: StorageAdapter = new LocalBackend(work)
    Object.defineProperty(streamOnly, 'writeWhole', {value: undefined})
    expect(streamOnly.writeWhole).to.equal(undefined)
    await copyTree(new LocalBackend(work), streamOnly)
    await expectSameTree()
  })

  it('streams a file that grew after it was listed, and copies what it holds now', async () => {
    class Growing extends LocalBackend {
      override async readWhole(file: string, entry: Entry): Promise<Buffer | undefined> {
        if (file === '/src/sub/f1') await fs.appendFile(path.join(work, 'src/sub/f1'), Buffer.alloc(100_000, 9))
        return super.readWhole(file, entry)
      }
    }
    await copyTree(new Growing(work), new LocalBackend(work))
    const grown = await fs.readFile(path.join(work, 'out/sub/f1'))
    expect(grown.length).to.equal(100_001)
    expect(grown.equals(await fs.readFile(path.join(work, 'src/sub/f1')))).to.equal(true)
  })
})
