// The one compliance suite every StorageAdapter runs, in the manner of
// rclone's fstests: a backend's own test file only says how to build it.
import {expect} from 'chai'
import {createHash, randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'
import {text} from 'node:stream/consumers'

import {WHOLE_FILE_BYTES, type Entry, type StorageAdapter} from '../../src/backends/adapter.js'
import {ConflictError, IntegrityError, NotFoundError, UsageError} from '../../src/base/index.js'

export interface ComplianceSetup {
  adapter: StorageAdapter
  teardown?: () => Promise<void>
}

async function collectList(adapter: StorageAdapter, dir: string): Promise<Entry[]> {
  const entries: Entry[] = []
  for await (const entry of adapter.list(dir)) entries.push(entry)
  return entries.sort((a, b) => a.name.localeCompare(b.name))
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }

  throw new Error('expected the operation to fail, but it succeeded')
}

async function readAll(adapter: StorageAdapter, path: string): Promise<Buffer> {
  const stream = await adapter.openRead(path)
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array))
  return Buffer.concat(chunks)
}

function put(adapter: StorageAdapter, path: string, content: string | Buffer, overwrite = false): Promise<Entry> {
  const data = Buffer.from(content)
  return adapter.write(path, Readable.from([data]), {size: data.length, overwrite})
}

/** Optional features a backend does not have; the suite then leaves their tests out. */
export interface ComplianceOptions {
  without?: Array<'copy' | 'move' | 'about'>
  /** The directory the tests work in (default `/`), e.g. a bucket. */
  baseDir?: string
  /** Directories are prefixes (S3): mkdir and write below a missing directory succeed. */
  implicitParents?: boolean
  /** The backend reads and writes small files whole (readWhole, writeWhole): their tests run. */
  whole?: boolean
}

export function describeStorageCompliance(
  name: string,
  setup: () => Promise<ComplianceSetup>,
  options: ComplianceOptions = {},
): void {
  const has = (feature: 'copy' | 'move' | 'about') => !options.without?.includes(feature)
  const itIf = (condition: boolean) => (condition ? it : () => {})

  describe(`StorageAdapter compliance: ${name}`, function () {
    this.timeout(60_000)
    let adapter: StorageAdapter
    let teardown: (() => Promise<void>) | undefined
    let base: string

    before(async function () {
      // A setup may start a shared server first (the S3 suite's radosgw: 15–30 s, retried).
      this.timeout(240_000)
      ;({adapter, teardown} = await setup())
    })

    after(async () => {
      await adapter?.close?.()
      await teardown?.()
    })

    beforeEach(async function () {
      base = `${options.baseDir ?? ''}/compliance-${this.currentTest?.title.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}-${randomBytes(3).toString('hex')}`
      await adapter.mkdir(base)
    })

    it('describes the root as a directory', async () => {
      const root = await adapter.stat('/')
      expect(root.type).to.equal('dir')
      expect(root.path).to.equal('/')
      expect(root.size).to.equal(null)
    })

    it('creates a directory and describes it', async () => {
      const made = await adapter.mkdir(`${base}/photos`)
      expect(made).to.include({name: 'photos', path: `${base}/photos`, type: 'dir', size: null})
      const entry = await adapter.stat(`${base}/photos`)
      expect(entry).to.include({name: 'photos', path: `${base}/photos`, type: 'dir', size: null})
    })

    it('refuses mkdir of an existing path with ConflictError', async () => {
      await adapter.mkdir(`${base}/d`)
      expect(await rejection(adapter.mkdir(`${base}/d`))).to.be.instanceOf(ConflictError)
      await put(adapter, `${base}/f`, 'x')
      expect(await rejection(adapter.mkdir(`${base}/f`))).to.be.instanceOf(ConflictError)
    })

    itIf(!options.implicitParents)('refuses mkdir under a missing parent with NotFoundError(dir)', async () => {
      const error = await rejection(adapter.mkdir(`${base}/missing/child`))
      expect(error).to.be.instanceOf(NotFoundError)
      expect((error as NotFoundError).kind).to.equal('dir')
    })

    it('writes a file, reads it back and describes it with size, time and hashes', async () => {
      const content = 'hello, disk\n'
      const written = await put(adapter, `${base}/hello.txt`, content)
      expect(written).to.include({name: 'hello.txt', path: `${base}/hello.txt`, type: 'file', size: content.length})
      const entry = await adapter.stat(`${base}/hello.txt`)
      expect(entry).to.include({type: 'file', size: content.length})
      expect(entry.modified === null || !Number.isNaN(Date.parse(entry.modified))).to.equal(true)
      for (const hash of adapter.hashes ?? []) {
        expect(entry[hash], hash).to.equal(createHash(hash).update(content).digest('hex'))
      }

      expect((await readAll(adapter, `${base}/hello.txt`)).toString()).to.equal(content)
    })

    itIf(!options.whole)('has no whole-file features its suite does not test (readWhole, writeWhole)', () => {
      expect([adapter.readWhole, adapter.writeWhole]).to.deep.equal([undefined, undefined])
    })

    itIf(Boolean(options.whole))('writes small files given whole (writeWhole) as write does', async () => {
      expect(adapter.writeWhole).to.be.a('function')
      const writeWhole = adapter.writeWhole!.bind(adapter)
      const small = randomBytes(WHOLE_FILE_BYTES)
      const written = await writeWhole(`${base}/small.bin`, small)
      expect(written).to.include({name: 'small.bin', path: `${base}/small.bin`, type: 'file', size: small.length})
      expect((await readAll(adapter, `${base}/small.bin`)).equals(small)).to.equal(true)
      await writeWhole(`${base}/empty`, Buffer.alloc(0))
      expect((await adapter.stat(`${base}/empty`)).size).to.equal(0)
      // Refused without overwrite, replaced with it.
      expect(await rejection(writeWhole(`${base}/small.bin`, Buffer.from('other')))).to.be.instanceOf(ConflictError)
      expect((await readAll(adapter, `${base}/small.bin`)).equals(small)).to.equal(true)
      await writeWhole(`${base}/small.bin`, Buffer.from('other'), {overwrite: true})
      expect((await readAll(adapter, `${base}/small.bin`)).toString()).to.equal('other')
      // A content that is not what the source said is refused, and nothing is left.
      const wrong = await rejection(writeWhole(`${base}/wrong.bin`, Buffer.from('abc'), {expect: {sha256: createHash('sha256').update('abd').digest('hex')}}))
      expect(wrong).to.be.instanceOf(IntegrityError)
      expect(await rejection(adapter.stat(`${base}/wrong.bin`))).to.be.instanceOf(NotFoundError)
      await writeWhole(`${base}/right.bin`, Buffer.from('abc'), {expect: {md5: createHash('md5').update('abc').digest('hex')}})
      if (!options.implicitParents) {
        const missing = await rejection(writeWhole(`${base}/missing/child.bin`, Buffer.from('x')))
        expect(missing).to.be.instanceOf(NotFoundError)
        expect((missing as NotFoundError).kind).to.equal('dir')
      }
      // Nothing but the files themselves (no temporary files) in the listing.
      expect((await collectList(adapter, base)).map((entry) => entry.name)).to.deep.equal(['empty', 'right.bin', 'small.bin'])
    })

    itIf(Boolean(options.whole))('reads small files whole (readWhole), and declines one larger than listed', async () => {
      expect(adapter.readWhole).to.be.a('function')
      const readWhole = adapter.readWhole!.bind(adapter)
      const data = randomBytes(1000)
      const entry = await put(adapter, `${base}/r.bin`, data)
      expect((await readWhole(`${base}/r.bin`, entry))?.equals(data)).to.equal(true)
      // Listed smaller than it now is (it grew): the caller must stream it.
      expect(await readWhole(`${base}/r.bin`, {...entry, size: 999})).to.equal(undefined)
      // Listed larger than WHOLE_FILE_BYTES: not read whole.
      expect(await readWhole(`${base}/r.bin`, {...entry, size: WHOLE_FILE_BYTES + 1})).to.equal(undefined)
      const empty = await put(adapter, `${base}/e`, Buffer.alloc(0))
      expect((await readWhole(`${base}/e`, empty))?.length).to.equal(0)
      const gone = await rejection(readWhole(`${base}/gone`, {...entry, path: `${base}/gone`, name: 'gone'}))
      expect(gone).to.be.instanceOf(NotFoundError)
    })

    it('stores binary and empty files byte for byte', async () => {
      const binary = randomBytes(300_000)
      await put(adapter, `${base}/blob.bin`, binary)
      expect((await readAll(adapter, `${base}/blob.bin`)).equals(binary)).to.equal(true)
      await put(adapter, `${base}/empty`, Buffer.alloc(0))
      expect((await adapter.stat(`${base}/empty`)).size).to.equal(0)
      expect((await readAll(adapter, `${base}/empty`)).length).to.equal(0)
    })

    it('keeps names with spaces, plus signs and non-ASCII letters', async () => {
      const path = `${base}/a b+c дом.txt`
      await put(adapter, path, 'odd name')
      expect((await adapter.stat(path)).name).to.equal('a b+c дом.txt')
      expect((await collectList(adapter, base)).map((e) => e.name)).to.deep.equal(['a b+c дом.txt'])
      expect((await readAll(adapter, path)).toString()).to.equal('odd name')
    })

    it('refuses to overwrite a file without the overwrite option, and replaces it with it', async () => {
      await put(adapter, `${base}/f.txt`, 'one')
      expect(await rejection(put(adapter, `${base}/f.txt`, 'two'))).to.be.instanceOf(ConflictError)
      expect((await readAll(adapter, `${base}/f.txt`)).toString()).to.equal('one')
      await put(adapter, `${base}/f.txt`, 'three!', true)
      expect((await readAll(adapter, `${base}/f.txt`)).toString()).to.equal('three!')
      expect((await adapter.stat(`${base}/f.txt`)).size).to.equal(6)
    })

    itIf(!options.implicitParents)('refuses a write under a missing parent with NotFoundError(dir)', async () => {
      const error = await rejection(put(adapter, `${base}/nope/f.txt`, 'x'))
      expect(error).to.be.instanceOf(NotFoundError)
      expect((error as NotFoundError).kind).to.equal('dir')
    })

    it('lists a directory with files and subdirectories', async () => {
      await adapter.mkdir(`${base}/sub`)
      await put(adapter, `${base}/a.txt`, 'aaa')
      await put(adapter, `${base}/b.txt`, 'bb')
      const entries = await collectList(adapter, base)
      expect(entries.map((e) => [e.name, e.type, e.size, e.path])).to.deep.equal([
        ['a.txt', 'file', 3, `${base}/a.txt`],
        ['b.txt', 'file', 2, `${base}/b.txt`],
        ['sub', 'dir', null, `${base}/sub`],
      ])
      expect(await collectList(adapter, `${base}/sub`)).to.deep.equal([])
    })

    it('lists every entry of a larger directory', async () => {
      const names = Array.from({length: 45}, (_, i) => `f${String(i).padStart(3, '0')}`)
      for (const n of names) await put(adapter, `${base}/${n}`, n)
      expect((await collectList(adapter, base)).map((e) => e.name)).to.deep.equal(names)
    })

    it('reports a missing directory to list as NotFoundError(dir)', async () => {
      const error = await rejection(collectList(adapter, `${base}/missing`))
      expect(error).to.be.instanceOf(NotFoundError)
      expect((error as NotFoundError).kind).to.equal('dir')
    })

    it('reports a missing path to stat and openRead as NotFoundError(file)', async () => {
      for (const attempt of [adapter.stat(`${base}/missing.txt`), adapter.openRead(`${base}/missing.txt`)]) {
        const error = await rejection(attempt)
        expect(error).to.be.instanceOf(NotFoundError)
        expect((error as NotFoundError).kind).to.equal('file')
      }
    })

    it('removes a file', async () => {
      await put(adapter, `${base}/f.txt`, 'x')
      await adapter.remove(`${base}/f.txt`)
      expect(await rejection(adapter.stat(`${base}/f.txt`))).to.be.instanceOf(NotFoundError)
    })

    it('removes a file permanently', async () => {
      await put(adapter, `${base}/f.txt`, 'x')
      await adapter.remove(`${base}/f.txt`, {permanently: true})
      expect(await rejection(adapter.stat(`${base}/f.txt`))).to.be.instanceOf(NotFoundError)
    })

    it('refuses to remove a directory without recursive, and removes it whole with it', async () => {
      await adapter.mkdir(`${base}/d`)
      await put(adapter, `${base}/d/f.txt`, 'x')
      expect(await rejection(adapter.remove(`${base}/d`))).to.be.instanceOf(UsageError)
      expect((await adapter.stat(`${base}/d/f.txt`)).type).to.equal('file')
      await adapter.remove(`${base}/d`, {recursive: true})
      expect(await rejection(adapter.stat(`${base}/d`))).to.be.instanceOf(NotFoundError)
    })

    it('reports removing a missing path as NotFoundError', async () => {
      expect(await rejection(adapter.remove(`${base}/missing`))).to.be.instanceOf(NotFoundError)
    })

    itIf(has('copy'))('copies a file and a whole directory server-side, leaving the source', async () => {
      await adapter.mkdir(`${base}/src`)
      await put(adapter, `${base}/src/a.txt`, 'alpha')
      await adapter.mkdir(`${base}/src/inner`)
      await put(adapter, `${base}/src/inner/b.txt`, 'beta')
      const copied = await adapter.copy!(`${base}/src/a.txt`, `${base}/a-copy.txt`)
      expect(copied).to.include({path: `${base}/a-copy.txt`, type: 'file', size: 5})
      await adapter.copy!(`${base}/src`, `${base}/dst`)
      expect((await readAll(adapter, `${base}/dst/inner/b.txt`)).toString()).to.equal('beta')
      expect((await readAll(adapter, `${base}/src/inner/b.txt`)).toString()).to.equal('beta')
      expect(await rejection(adapter.copy!(`${base}/src/a.txt`, `${base}/a-copy.txt`))).to.be.instanceOf(ConflictError)
      await put(adapter, `${base}/other.txt`, 'other')
      await adapter.copy!(`${base}/other.txt`, `${base}/a-copy.txt`, {overwrite: true})
      expect((await readAll(adapter, `${base}/a-copy.txt`)).toString()).to.equal('other')
    })

    itIf(has('move'))('moves a file and a whole directory server-side', async () => {
      await adapter.mkdir(`${base}/src`)
      await put(adapter, `${base}/src/a.txt`, 'alpha')
      await put(adapter, `${base}/loose.txt`, 'loose')
      const moved = await adapter.move!(`${base}/loose.txt`, `${base}/renamed.txt`)
      expect(moved).to.include({path: `${base}/renamed.txt`, type: 'file', size: 5})
      expect(await rejection(adapter.stat(`${base}/loose.txt`))).to.be.instanceOf(NotFoundError)
      await adapter.move!(`${base}/src`, `${base}/dst`)
      expect((await readAll(adapter, `${base}/dst/a.txt`)).toString()).to.equal('alpha')
      expect(await rejection(adapter.stat(`${base}/src`))).to.be.instanceOf(NotFoundError)
      await put(adapter, `${base}/x.txt`, 'x')
      expect(await rejection(adapter.move!(`${base}/x.txt`, `${base}/renamed.txt`))).to.be.instanceOf(ConflictError)
      expect((await readAll(adapter, `${base}/x.txt`)).toString()).to.equal('x')
    })

    itIf(has('copy') || has('move'))('reports copy and move of a missing source as NotFoundError', async () => {
      for (const op of [has('copy') && adapter.copy, has('move') && adapter.move]) {
        if (op) expect(await rejection(op.call(adapter, `${base}/missing`, `${base}/x`))).to.be.instanceOf(NotFoundError)
      }
    })

    itIf(has('about'))('reports quota as numbers or nulls', async () => {
      const about = await adapter.about!()
      for (const key of ['total', 'used', 'free', 'trash']) {
        expect(about[key] === null || typeof about[key] === 'number', key).to.equal(true)
      }
    })

    it('streams a file written from a multi-chunk stream', async () => {
      const chunks = Array.from({length: 20}, (_, i) => Buffer.alloc(10_000, i))
      await adapter.write(`${base}/chunks.bin`, Readable.from(chunks), {size: 200_000})
      const back = await readAll(adapter, `${base}/chunks.bin`)
      expect(back.equals(Buffer.concat(chunks))).to.equal(true)
      expect(await text(await adapter.openRead(`${base}/chunks.bin`))).to.have.length(200_000)
    })
  })
}
