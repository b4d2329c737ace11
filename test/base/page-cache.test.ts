// Dropping read files from the page cache (src/base/page-cache.ts, its addon
// src/base/native.c built by `npm run build`), with the effect read back
// by util-linux's `fincore` (the pages of a file that are in memory): a
// cached file's pages go, a range drops only that range, and a bad
// descriptor or a pipe is a refusal, not a throw.
import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {canDropFromPageCache, dropFromPageCache} from '../../src/base/index.js'
import {cachedBytes} from '../helpers/page-cache.js'
import {seeded} from '../helpers/bytes.js'

describe('base: dropping files from the page cache', () => {
  let dir: string
  let file: string
  const size = 8 << 20

  before(() => {
    // The addon is built by `npm run build` (the test command runs it first; the project runs on Linux).
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'page-cache-'))
    file = path.join(dir, 'f')
    fs.writeFileSync(file, seeded(size, 'page-cache'))
    // Clean pages only: dirty ones are written back first, not dropped.
    const fd = fs.openSync(file, 'r+')
    fs.fsyncSync(fd)
    fs.closeSync(fd)
  })

  after(() => {
    if (dir) fs.rmSync(dir, {recursive: true, force: true})
  })

  it('is built and loads', () => {
    expect(canDropFromPageCache()).to.equal(true)
  })

  it('drops a whole file that was read', () => {
    fs.readFileSync(file)
    expect(cachedBytes(file)).to.equal(size)
    const fd = fs.openSync(file, 'r')
    try {
      expect(dropFromPageCache(fd)).to.equal(true)
    } finally {
      fs.closeSync(fd)
    }
    expect(cachedBytes(file)).to.equal(0)
    // The bytes are all still there, read back from the disk.
    expect(fs.readFileSync(file).equals(seeded(size, 'page-cache'))).to.equal(true)
  })

  it('drops only the range asked for', () => {
    fs.readFileSync(file)
    const fd = fs.openSync(file, 'r')
    try {
      expect(dropFromPageCache(fd, 0, size / 2)).to.equal(true)
    } finally {
      fs.closeSync(fd)
    }
    expect(cachedBytes(file)).to.equal(size / 2)
  })

  it('refuses a closed descriptor, a closed FileHandle (-1), a pipe and a negative range without throwing', () => {
    const fd = fs.openSync(file, 'r')
    fs.closeSync(fd)
    expect(dropFromPageCache(fd)).to.equal(false)
    const fifo = path.join(dir, 'fifo')
    execFileSync('mkfifo', [fifo])
    const pipe = fs.openSync(fifo, fs.constants.O_RDWR)
    try {
      expect(dropFromPageCache(pipe)).to.equal(false)
    } finally {
      fs.closeSync(pipe)
    }
    expect(dropFromPageCache(-1)).to.equal(false)
    expect(dropFromPageCache(3, -5, 0)).to.equal(false)
    expect(dropFromPageCache(3, 0.5, 0)).to.equal(false)
  })
})
