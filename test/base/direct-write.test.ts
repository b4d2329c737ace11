// Direct (O_DIRECT) writes (src/base/direct-write.ts): aligned memory, whole
// 4 KiB blocks written directly and the rest through the ordinary
// descriptor, byte-exact wherever the blocks land and whatever memory they
// come from; the page cache left out (read back with fincore); no more
// writes in flight than asked; the writer's end waits for every write; and
// null where direct I/O is not possible.
import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {alignedBuffer, DIRECT_ALIGN, DirectWriter} from '../../src/base/index.js'
import {nativeAddon} from '../../src/base/native.js'
import {cachedBytes} from '../helpers/page-cache.js'
import {seeded} from '../helpers/bytes.js'

describe('base: direct writes', () => {
  let dir: string
  let file: string
  let fd: number

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'direct-write-'))
    file = path.join(dir, 'f')
    fd = fs.openSync(file, 'wx+')
  })

  afterEach(() => {
    if (fd !== undefined) fs.closeSync(fd)
    if (dir) fs.rmSync(dir, {recursive: true, force: true})
  })

  it('gives aligned memory, plain or shared', () => {
    const native = nativeAddon()!
    expect(native).to.not.equal(null)
    for (const size of [4096, 65_536, 1 << 20, 4 << 20, 100]) {
      expect(native.misalignment(alignedBuffer(size))).to.equal(0)
      const shared = alignedBuffer(size, (n) => Buffer.from(new SharedArrayBuffer(n)))
      expect(native.misalignment(shared)).to.equal(0)
      expect(shared.length).to.equal(size)
      expect(shared.buffer).to.be.instanceOf(SharedArrayBuffer)
    }
    // Plain buffers of this size are not aligned (malloc's header): the case the writer copies.
    expect(native.misalignment(Buffer.allocUnsafeSlow(4 << 20))).to.not.equal(0)
  })

  it('writes pieces from aligned and unaligned memory, with a short last one, byte-exact and past the page cache', async () => {
    const piece = 1 << 20
    const size = 5 * piece + 12_345
    const content = seeded(size, 'direct')
    const writer = DirectWriter.open(fd, piece, 2)
    expect(writer).to.not.equal(null)
    const released: number[] = []
    for (let index = 0, at = 0; at < size; index++, at += piece) {
      const length = Math.min(piece, size - at)
      // Even pieces from aligned memory (written from where they are), odd ones from plain memory (copied).
      const data = index % 2 === 0 ? alignedBuffer(length) : Buffer.allocUnsafeSlow(length)
      content.copy(data, 0, at, at + length)
      await writer!.write(data, at, () => released.push(index))
    }
    await writer!.finish()
    fs.fsyncSync(fd)
    expect(released.sort()).to.deep.equal([0, 1, 2, 3, 4, 5])
    expect(fs.readFileSync(file).equals(content)).to.equal(true)
  })

  it('leaves the page cache out: only the last partial block is cached', async () => {
    const size = 3 * (1 << 20) + 100
    const content = seeded(size, 'uncached')
    const writer = DirectWriter.open(fd, 1 << 20)!
    for (let at = 0; at < size; at += 1 << 20) await writer.write(content.subarray(at, Math.min(size, at + (1 << 20))), at)
    await writer.finish()
    fs.fsyncSync(fd)
    expect(cachedBytes(file)).to.equal(DIRECT_ALIGN)
    expect(fs.readFileSync(file).equals(content)).to.equal(true)
  })

  it('writes at an unaligned position through the ordinary descriptor', async () => {
    const writer = DirectWriter.open(fd, 1 << 20)!
    const head = seeded(DIRECT_ALIGN * 2, 'head')
    const odd = seeded(DIRECT_ALIGN * 3, 'odd')
    await writer.write(head, 0)
    await writer.write(odd, head.length + 1000)
    await writer.finish()
    const expected = Buffer.concat([head, Buffer.alloc(1000), odd])
    expect(fs.readFileSync(file).equals(expected)).to.equal(true)
  })

  it('keeps no more writes in flight than its slots, and finish() waits for all of them', async () => {
    const realWrite = fs.write
    let inFlight = 0
    let most = 0
    // Count the writes in libuv's pool; the real call does the work.
    ;(fs as {write: unknown}).write = (...args: unknown[]) => {
      inFlight++
      most = Math.max(most, inFlight)
      const callback = args.at(-1) as (...results: unknown[]) => void
      return (realWrite as (...a: unknown[]) => void)(...args.slice(0, -1), (...results: unknown[]) => {
        inFlight--
        callback(...results)
      })
    }
    try {
      const writer = DirectWriter.open(fd, 64 * 1024, 3)!
      const content = seeded(40 * 64 * 1024, 'slots')
      for (let at = 0; at < content.length; at += 64 * 1024) await writer.write(alignedBuffer(64 * 1024).fill(content.subarray(at, at + 64 * 1024)), at)
      await writer.finish()
      expect(inFlight).to.equal(0)
      expect(most).to.be.within(1, 3)
      expect(fs.readFileSync(file).equals(content)).to.equal(true)
      let failure: unknown
      await writer.write(alignedBuffer(4096), 0).catch((error: unknown) => (failure = error))
      expect(String(failure)).to.match(/after finish/)
    } finally {
      ;(fs as {write: unknown}).write = realWrite
    }
  })

  it('is not opened on a pipe, nor with a block size that is not whole 4 KiB blocks', () => {
    const fifo = path.join(dir, 'fifo')
    fs.rmSync(file)
    execFileSync('mkfifo', [fifo])
    const pipe = fs.openSync(fifo, fs.constants.O_RDWR)
    try {
      expect(DirectWriter.open(pipe, 1 << 20)).to.equal(null)
    } finally {
      fs.closeSync(pipe)
    }
    expect(DirectWriter.open(fd, 1000)).to.equal(null)
  })
})
