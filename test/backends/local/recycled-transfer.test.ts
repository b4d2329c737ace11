// A local -> local transfer reads into reused shared buffers (the local
// backend declares recyclesChunks, so the source's openRead gets
// `recycled`): each chunk must come back only once its bytes are in the
// destination file. Files of many chunks, two at a time sharing the pool,
// compared by SHA-256 with what was read.
import {createHash} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import {expect} from 'chai'

import type {ReadOptions, StorageAdapter} from '../../../src/backends/adapter.js'
import type {LocalBackend as LocalBackendType} from '../../../src/backends/local/index.js'
import type {transfer as transferType} from '../../../src/ops/transfer.js'

const MiB = 1024 * 1024

/** Seeded bytes (SHA-256 in counter mode): no two chunks alike, so a chunk overwritten by the next read shows. */
function bytes(seed: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  for (let offset = 0, i = 0; offset < size; offset += 32, i++) {
    createHash('sha256').update(`${seed} ${i}`).digest().copy(out, offset, 0, Math.min(32, size - offset))
  }

  return out
}

const sha256 = async (file: string) => createHash('sha256').update(await fs.readFile(file)).digest('hex')

describe('local -> local transfer through recycled chunks', function () {
  this.timeout(120_000)
  let work: string
  // Loaded with import(), as LocalBackend loads file-reader.js: under mocha
  // and tsx a static import here would load recycle.ts a second time (as
  // CommonJS), and the reader's marks would not be the writer's.
  let LocalBackend: typeof LocalBackendType
  let transfer: typeof transferType

  before(async () => {
    ;({LocalBackend} = await import('../../../src/backends/local/index.js'))
    ;({transfer} = await import('../../../src/ops/transfer.js'))
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-recycled-transfer-'))
    await fs.mkdir(path.join(work, 'src', 'tree'), {recursive: true})
    await fs.mkdir(path.join(work, 'dst'))
    // 70 MiB: read in 4 MiB chunks (file-reader.ts), more than the pool keeps; the others in 1 MiB ones, with short tails.
    await fs.writeFile(path.join(work, 'src', 'tree', 'large.bin'), bytes('large', 70 * MiB + 12_345))
    for (let i = 0; i < 4; i++) await fs.writeFile(path.join(work, 'src', 'tree', `small-${i}.bin`), bytes(`small ${i}`, 9 * MiB + 1000 * i + 7))
  })

  after(() => fs.rm(work, {recursive: true, force: true}))

  it('declares that its writes hand chunks back', () => {
    expect(new LocalBackend(work).recyclesChunks).to.equal(true)
  })

  it('copies a tree of multi-chunk files intact while the buffers are reused', async () => {
    const local = new LocalBackend(path.join(work, 'src'))
    const asked: boolean[] = []
    const buffers = new Set<ArrayBufferLike>()
    let chunks = 0
    // The source as it is, watched: what it was asked for, and which memory its chunks are in (the same Buffer objects go on, marks and all).
    const source: StorageAdapter = Object.assign(Object.create(local) as LocalBackendType, {
      async openRead(file: string, options: ReadOptions = {}) {
        asked.push(options.recycled === true)
        const stream = await local.openRead(file, options)
        return Readable.from(
          (async function* () {
            for await (const chunk of stream as AsyncIterable<Buffer>) {
              chunks++
              buffers.add(chunk.buffer)
              yield chunk
            }
          })(),
          {objectMode: false},
        )
      },
    })
    const destination = new LocalBackend(path.join(work, 'dst'))
    const result = await transfer({adapter: source, backend: 'local', path: '/tree'}, {adapter: destination, backend: 'local', path: '/tree'}, 'copy', {transfers: 2})
    expect(result.files).to.equal(5)
    expect(asked).to.have.length(5)
    expect(asked.every(Boolean), 'the source was asked for recycled chunks').to.equal(true)
    // 18 + 4 * 10 chunks; reused buffers mean far fewer distinct ones.
    expect(chunks).to.equal(58)
    expect(buffers.size, 'chunks were read into reused buffers').to.be.below(chunks / 2)
    for (const name of ['large.bin', 'small-0.bin', 'small-1.bin', 'small-2.bin', 'small-3.bin']) {
      expect(await sha256(path.join(work, 'dst', 'tree', name)), name).to.equal(await sha256(path.join(work, 'src', 'tree', name)))
    }
  })
})
