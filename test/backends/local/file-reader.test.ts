import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {FileChunks, LARGE_READ_BYTES, LARGE_READ_FROM} from '../../../src/backends/local/file-reader.js'
import {recycle} from '../../../src/backends/recycle.js'
import {cachedBytes} from '../../helpers/page-cache.js'

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

describe('FileChunks: a local file read in full, recycled chunks', function () {
  this.timeout(60_000)
  let work: string
  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'file-chunks-'))
  })
  after(async () => {
    await fs.rm(work, {recursive: true, force: true})
  })

  async function readAll(file: string, size: number, recycling: boolean, chunkBytes?: number) {
    const hash = createHash('sha256')
    const lengths: number[] = []
    const buffers = new Set<ArrayBufferLike>()
    for await (const chunk of new FileChunks(await fs.open(file), size, chunkBytes)) {
      hash.update(chunk as Buffer)
      lengths.push((chunk as Buffer).length)
      buffers.add((chunk as Buffer).buffer)
      if (recycling) recycle(chunk as Buffer)
    }
    return {sha256: hash.digest('hex'), lengths, buffers: buffers.size}
  }

  it('reads a large file in 4 MiB chunks (the last one shorter), reusing the chunks handed back, byte-exact', async () => {
    const size = LARGE_READ_FROM + 3
    const content = Buffer.alloc(size)
    for (let i = 0; i + 4 <= size; i += 512) content.writeUInt32LE(i * 2654435761 >>> 0, i)
    const file = path.join(work, 'large.bin')
    await fs.writeFile(file, content)
    const recycled = await readAll(file, size, true)
    expect(recycled.sha256).to.equal(sha256(content))
    expect(recycled.lengths.slice(0, -1).every((n) => n === LARGE_READ_BYTES)).to.equal(true)
    expect(recycled.lengths.at(-1)).to.equal(3)
    expect(recycled.buffers).to.be.below(5)
    // A caller may ask for another chunk size (serve webdav's GET: 1 MiB): the same bytes, in that size, the same few buffers
    // (before the read below, which keeps its chunks and so leaves the pool's shared memory lent).
    const asked = await readAll(file, size, true, 1024 * 1024)
    expect(asked.sha256).to.equal(sha256(content))
    expect(asked.lengths.length).to.equal(65)
    expect(asked.lengths.slice(0, -1).every((n) => n === 1024 * 1024)).to.equal(true)
    expect(asked.lengths.at(-1)).to.equal(3)
    expect(asked.buffers).to.be.below(5)
    // A consumer that hands nothing back gets fresh chunks, and the same bytes.
    const kept = await readAll(file, size, false)
    expect(kept.sha256).to.equal(sha256(content))
    expect(kept.buffers).to.equal(kept.lengths.length)
  })

  it('reads a small file in 1 MiB chunks, an empty one as no chunk, and a pipe to its end', async () => {
    const small = Buffer.alloc(2 * 1024 * 1024 + 10, 7)
    await fs.writeFile(path.join(work, 'small.bin'), small)
    const read = await readAll(path.join(work, 'small.bin'), small.length, true)
    expect(read.lengths).to.deep.equal([1024 * 1024, 1024 * 1024, 10])
    expect(read.sha256).to.equal(sha256(small))
    await fs.writeFile(path.join(work, 'empty'), '')
    expect((await readAll(path.join(work, 'empty'), 0, true)).lengths).to.deep.equal([])

    const fifo = path.join(work, 'pipe')
    execFileSync('mkfifo', [fifo])
    const reading = fs.open(fifo, 'r').then(async (handle) => {
      const chunks: Buffer[] = []
      for await (const chunk of new FileChunks(handle, 0)) chunks.push(Buffer.from(chunk as Buffer))
      return Buffer.concat(chunks)
    })
    const writer = await fs.open(fifo, 'w')
    await writer.write(Buffer.from('first part, '))
    await writer.write(small)
    await writer.close()
    expect(sha256(await reading)).to.equal(sha256(Buffer.concat([Buffer.from('first part, '), small])))
  })

  it('with dropBehind, leaves none of the file in the page cache once read; without it, all of it', async () => {
    const size = 12 * 1024 * 1024 + 5
    const content = Buffer.alloc(size)
    for (let i = 0; i + 4 <= size; i += 256) content.writeUInt32LE((i * 2246822519) >>> 0, i)
    const file = path.join(work, 'drop-behind.bin')
    await fs.writeFile(file, content)
    const fd = await fs.open(file, 'r+')
    await fd.sync() // clean pages: dirty ones would only be scheduled for writeback
    await fd.close()
    for (const dropBehind of [false, true]) {
      await fs.readFile(file) // all of it cached
      const hash = createHash('sha256')
      for await (const chunk of new FileChunks(await fs.open(file), size, undefined, dropBehind)) {
        hash.update(chunk as Buffer)
        recycle(chunk as Buffer)
      }
      expect(hash.digest('hex')).to.equal(sha256(content))
      expect(cachedBytes(file), `cached after a read with dropBehind ${dropBehind}`).to.equal(dropBehind ? 0 : size + 4096 - (size % 4096))
    }
  })
})
