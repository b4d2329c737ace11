import {randomBytes} from 'node:crypto'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {BlobStore} from '../../src/kv/blobs.js'
import {BufferPool} from '../../src/kv/resp.js'
import {cachedBytes} from '../helpers/page-cache.js'

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('kv blob files: write-behind fsync', () => {
  let dir: string

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dc-blobs-'))
  })

  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('starts syncing by itself once 32 MiB are unsynced, without holding up the writes, and sync() covers the rest', async () => {
    const blobs = new BlobStore(dir, false)
    const data = randomBytes(4 * 1024 * 1024)
    // Seven pieces: below the threshold, nothing is synced until asked.
    for (let i = 0; i < 7; i++) await blobs.write(blobs.name(Buffer.from(`key${i}`), 1), data)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(blobs.unsyncedCount).to.equal(7)

    // The eighth reaches 32 MiB: a sync takes all eight, with no sync() call.
    await blobs.write(blobs.name(Buffer.from('key7'), 1), data)
    await until(() => blobs.unsyncedCount === 0, 'the write-behind sync to take the unsynced blobs')

    // Writes made while it runs are taken by the next sync, which waits for it.
    await blobs.write(blobs.name(Buffer.from('key8'), 1), data)
    expect(blobs.unsyncedCount).to.equal(1)
    await blobs.sync()
    expect(blobs.unsyncedCount).to.equal(0)

    // Every blob reads back whole.
    for (let i = 0; i < 9; i++) {
      const name = blobs.name(Buffer.from(`key${i}`), 1)
      expect((await blobs.read(name, data.length))!.equals(data)).to.equal(true)
    }
  })

  it('syncs blobs removed meanwhile, or whose folder is gone, without failing', async () => {
    const blobs = new BlobStore(dir, false)
    const a = blobs.name(Buffer.from('a'), 1)
    const b = blobs.name(Buffer.from('b'), 1)
    await blobs.write(a, randomBytes(100_000))
    await blobs.write(b, randomBytes(100_000))
    await blobs.remove(a)
    await rm(path.join(dir, 'blobs', b.slice(0, 2)), {recursive: true, force: true})
    await blobs.sync()
    expect(blobs.unsyncedCount).to.equal(0)
    const gone = await readFile(path.join(dir, 'blobs', b.slice(0, 2), b)).then(
      () => null,
      (error: NodeJS.ErrnoException) => error.code,
    )
    expect(gone).to.equal('ENOENT')
  })

  for (const syncEach of [false, true]) {
    it(`writes blobs on the calling thread (a server's store) that read back whole${syncEach ? ', fsync\'d each' : ''}`, async () => {
      const blobs = new BlobStore(dir, syncEach, true)
      const sizes = [65_537, 1024 * 1024, 4 * 1024 * 1024 + 3]
      const data = sizes.map((size) => randomBytes(size))
      for (const [i, bytes] of data.entries()) await blobs.write(blobs.name(Buffer.from(`inline${i}`), 1), bytes)
      expect(blobs.unsyncedCount).to.equal(syncEach ? 0 : sizes.length)
      for (const [i, bytes] of data.entries()) {
        const name = blobs.name(Buffer.from(`inline${i}`), 1)
        expect((await blobs.read(name, bytes.length))!.equals(bytes)).to.equal(true)
      }
      // A rewrite of a name replaces the whole file (no tail of a longer earlier write).
      const name = blobs.name(Buffer.from('inline2'), 1)
      await blobs.write(name, data[0])
      expect((await readFile(path.join(blobs.dir, name.slice(0, 2), name))).equals(data[0])).to.equal(true)
    })
  }

  it('drops a piece read into a pooled buffer from the page cache (it is read once per download), whole and intact', async () => {
    const blobs = new BlobStore(dir, true, true) // fsync'd each: clean pages, which a drop removes
    const bytes = randomBytes(4 * 1024 * 1024)
    const name = blobs.name(Buffer.from('piece'), 1)
    await blobs.write(name, bytes)
    const file = path.join(blobs.dir, name.slice(0, 2), name)
    await readFile(file)
    expect(cachedBytes(file)).to.equal(bytes.length)
    const pool = new BufferPool()
    const read = await blobs.read(name, bytes.length, pool)
    expect(read!.equals(bytes)).to.equal(true)
    expect(cachedBytes(file)).to.equal(0)
    pool.release(read!)
    // Read again, now from the disk: the same bytes.
    expect((await blobs.read(name, bytes.length, pool))!.equals(bytes)).to.equal(true)
  })
})
