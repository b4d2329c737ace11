import {execFileSync} from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import {expect} from 'chai'

import {LocalBackend, createLocalBackend} from '../../src/backends/local/index.js'
import {describeStorageCompliance} from '../compliance/storage.js'

describeStorageCompliance('local', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-local-'))
  const adapter = await createLocalBackend({
    retries: 0,
    retryBaseMs: 1,
    yandexApiUrl: '',
    localRoot: root,
    dataDir: '',
    log: () => {},
  })
  return {adapter, teardown: () => fs.rm(root, {recursive: true, force: true})}
}, {whole: true})

describe('local backend: a source that fails at once', () => {
  it('leaves no temporary file behind a failed write or copy', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-local-fail-'))
    try {
      const adapter = new LocalBackend(root)
      for (let i = 0; i < 20; i++) {
        const source = new Readable({
          read() {
            this.destroy(new Error('connection reset by peer'))
          },
        })
        let failed = false
        await adapter.write(`/f${i}.bin`, source).catch(() => (failed = true))
        expect(failed).to.equal(true)
        const copyFailed = await adapter.copy('/missing.bin', `/c${i}.bin`).then(
          () => false,
          () => true,
        )
        expect(copyFailed).to.equal(true)
      }

      expect(await fs.readdir(root)).to.deep.equal([])
    } finally {
      await fs.rm(root, {recursive: true, force: true})
    }
  })
})

describe('local backend: small files read whole', () => {
  it('leaves a FIFO to the stream path, without blocking on it', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-local-fifo-'))
    try {
      execFileSync('mkfifo', [path.join(root, 'pipe')])
      const adapter = new LocalBackend(root)
      const entry = await adapter.stat('/pipe')
      // Listed as a file of size 0, like any FIFO.
      expect(entry).to.include({type: 'file', size: 0})
      // A blocking open or read here would hang this test (no writer ever comes).
      expect(await adapter.readWhole('/pipe', entry)).to.equal(undefined)
    } finally {
      await fs.rm(root, {recursive: true, force: true})
    }
  })
})

describe('local backend: listing a tree in one walk (listRecursive)', () => {
  let root: string
  let adapter: LocalBackend

  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-local-tree-'))
    adapter = new LocalBackend(root)
    // More names in one directory than one stat batch, nested directories, an empty one,
    // a dangling link and a write in progress (both hidden, as from list).
    await fs.mkdir(path.join(root, 'a', 'b', 'c'), {recursive: true})
    await fs.mkdir(path.join(root, 'empty'))
    for (let i = 0; i < 600; i++) await fs.writeFile(path.join(root, 'a', `f${i}.txt`), `file ${i}`)
    await fs.writeFile(path.join(root, 'a', 'b', 'c', 'deep.txt'), 'deep')
    await fs.writeFile(path.join(root, 'a', '.disk-client-0123456789ab.partial'), 'partial')
    await fs.symlink(path.join(root, 'nowhere'), path.join(root, 'a', 'dangling'))
  })

  after(() => fs.rm(root, {recursive: true, force: true}))

  /** Every entry below `dir`, directory by directory through `list`. */
  async function walk(dir: string): Promise<string[]> {
    const out: string[] = []
    for await (const entry of adapter.list(dir)) {
      out.push(`${entry.path} ${entry.type} ${entry.size} ${entry.modified}`)
      if (entry.type === 'dir') out.push(...(await walk(entry.path)))
    }
    return out
  }

  it('gives what a walk by list gives, and list keeps its order by name', async () => {
    const listed: string[] = []
    let pages = 0
    for await (const page of adapter.listRecursive('/')) {
      pages++
      expect(page).to.not.be.empty
      for (const entry of page) listed.push(`${entry.path} ${entry.type} ${entry.size} ${entry.modified}`)
    }
    const walked = await walk('/')
    expect(listed).to.have.length(600 + 5)
    // Pages of at most one stat batch (256): '/' (a, empty), '/a' (600 files and b: three pages), '/a/b', '/a/b/c'.
    expect(pages).to.equal(6)
    expect([...listed].sort()).to.deep.equal([...walked].sort())
    expect(listed.some((line) => line.includes('partial') || line.includes('dangling'))).to.equal(false)
    expect(listed).to.include(`/a/f599.txt file 8 ${(await fs.stat(path.join(root, 'a', 'f599.txt'))).mtime.toISOString()}`)
    const names: string[] = []
    for await (const entry of adapter.list('/a')) names.push(entry.name)
    expect(names).to.deep.equal([...names].sort())
  })

  it('fails on a missing root or a file as root as list does', async () => {
    const failure = async (dir: string) => {
      try {
        for await (const _ of adapter.listRecursive(dir)) void _
      } catch (error) {
        return error as Error & {reason?: string}
      }
      throw new Error(`listing ${dir} did not fail`)
    }
    expect((await failure('/missing')).constructor.name).to.equal('NotFoundError')
    expect((await failure('/a/f1.txt')).reason).to.equal('not-directory')
  })
})
