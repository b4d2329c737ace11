import {createHash} from 'node:crypto'

import {expect} from 'chai'

import {allocShared, isShared, pieceHasher} from '../../../src/backends/cluster/hasher.js'

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

describe('piece hashing on a worker thread', () => {
  it('hashes pieces in shared memory on the worker, views at any offset, many at once, as this thread does', async () => {
    const block = allocShared(3 * 1024 * 1024 + 7)
    for (let i = 0; i < block.length; i++) block[i] = (i * 31 + (i >> 11)) & 0xff
    expect(isShared(block)).to.equal(true)
    expect(await pieceHasher.ready()).to.equal(true)
    const views = [block, block.subarray(1), block.subarray(1024 * 1024, 2 * 1024 * 1024 + 3), block.subarray(5, 5), block.subarray(block.length - 1)]
    const before = pieceHasher.onWorker
    const hashes = await Promise.all([...views, ...views].map((view) => pieceHasher.hash(view)))
    expect(hashes).to.deep.equal([...views, ...views].map(sha256))
    expect(pieceHasher.onWorker - before).to.equal(views.length * 2)
  })

  it('hashes ordinary buffers on this thread, and sees a changed byte', async () => {
    const plain = Buffer.from('not shared')
    expect(isShared(plain)).to.equal(false)
    expect(await pieceHasher.hash(plain)).to.equal(sha256(plain))
    const shared = allocShared(1024 * 1024)
    const before = await pieceHasher.hash(shared)
    shared[1000] = 1
    const after = await pieceHasher.hash(shared)
    expect(before).to.equal(sha256(Buffer.alloc(1024 * 1024)))
    expect(after).to.not.equal(before)
    expect(after).to.equal(sha256(shared))
  })
})
