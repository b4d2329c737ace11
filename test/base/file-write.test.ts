// File writes in system calls of at most 64 KiB (src/base/file-write.ts):
// the bytes land where asked, no call is larger than 64 KiB, short writes
// go on, and a failed write throws.
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {FILE_WRITE_BYTES, writeAllAtSync} from '../../src/base/index.js'
import {seeded} from '../helpers/bytes.js'

describe('base: file writes of at most 64 KiB', () => {
  let dir: string
  let file: string
  let fd: number
  const calls: number[] = []
  const realWriteSync = fs.writeSync

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'file-write-'))
    file = path.join(dir, 'f')
    fd = fs.openSync(file, 'w+')
    calls.length = 0
    // Record every call's length; the real call does the work.
    ;(fs as {writeSync: unknown}).writeSync = (target: number, buffer: Uint8Array, offset: number, length: number, position: number) => {
      calls.push(length)
      return realWriteSync(target, buffer, offset, length, position)
    }
  })

  afterEach(() => {
    ;(fs as {writeSync: unknown}).writeSync = realWriteSync
    fs.closeSync(fd)
    fs.rmSync(dir, {recursive: true, force: true})
  })

  it('writes synchronously at the position, 64 KiB per call', () => {
    const data = seeded(1_000_003, 'sync')
    writeAllAtSync(fd, data, 10)
    const back = fs.readFileSync(file)
    expect(back.length).to.equal(10 + data.length)
    expect(back.subarray(10).equals(data)).to.equal(true)
    expect(Math.max(...calls)).to.equal(FILE_WRITE_BYTES)
    expect(calls.reduce((a, b) => a + b, 0)).to.equal(data.length)
    expect(calls.length).to.equal(Math.ceil(data.length / FILE_WRITE_BYTES))
  })

  it('goes on after a short write', () => {
    // Every call writes at most 1,000 bytes of what it is given.
    ;(fs as {writeSync: unknown}).writeSync = (target: number, buffer: Uint8Array, offset: number, length: number, position: number) => {
      calls.push(length)
      return realWriteSync(target, buffer, offset, Math.min(length, 1000), position)
    }

    const data = seeded(150_000, 'short')
    writeAllAtSync(fd, data, 3)
    expect(fs.readFileSync(file).subarray(3).equals(data)).to.equal(true)
    expect(calls[0]).to.equal(FILE_WRITE_BYTES)
  })

  it('throws the error of a failed write', () => {
    ;(fs as {writeSync: unknown}).writeSync = () => {
      throw Object.assign(new Error('no space left on device'), {code: 'ENOSPC'})
    }

    expect(() => writeAllAtSync(fd, seeded(100_000, 'full'), 0)).to.throw(/no space left/)
  })

  it('writes nothing for an empty buffer', () => {
    writeAllAtSync(fd, Buffer.alloc(0), 5)
    expect(calls).to.have.length(0)
    expect(fs.statSync(file).size).to.equal(0)
  })
})
