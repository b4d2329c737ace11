import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'

import type {Entry, StorageAdapter} from '../../src/backends/adapter.js'
import {LocalBackend} from '../../src/backends/local/index.js'
import {ContentSource, type Metainfo, PartialContent, spans} from '../../src/torrent/index.js'
import {prngStream, tempDir} from './helpers.js'

/** A three-file torrent's metainfo over `data` (files of 70,000, 0 and 60,000 bytes; 32 KiB pieces). */
function metaOf(data: Buffer, name = 'set'): Metainfo {
  const pieceLength = 32 * 1024
  const pieces: Buffer[] = []
  for (let at = 0; at < data.length; at += pieceLength) pieces.push(createHash('sha1').update(data.subarray(at, at + pieceLength)).digest())
  return {
    infoHash: Buffer.alloc(20, 7),
    infoHashHex: '07'.repeat(20),
    name,
    pieceLength,
    pieces,
    length: data.length,
    files: [
      {path: ['a.bin'], length: 70_000, offset: 0},
      {path: ['empty'], length: 0, offset: 70_000},
      {path: ['d', 'b.bin'], length: 60_000, offset: 70_000},
    ],
    multiFile: true,
    announce: [],
    info: Buffer.alloc(0),
  }
}

/** Any backend that can only stream whole files (as Yandex.Disk): the content of each path in memory. */
function streamOnly(files: Record<string, Buffer>): StorageAdapter & {opens: number} {
  const adapter = {
    name: 'stream-only',
    opens: 0,
    async *list(): AsyncIterable<Entry> {},
    async stat(p: string): Promise<Entry> {
      const data = files[p]
      if (!data) throw new Error(`no ${p}`)
      return {name: path.posix.basename(p), path: p, type: 'file', size: data.length, modified: null}
    },
    async mkdir(): Promise<Entry> {
      throw new Error('read-only')
    },
    async remove(): Promise<void> {},
    async openRead(p: string): Promise<Readable> {
      adapter.opens++
      const data = files[p]
      // Small uneven chunks, as a network stream delivers them.
      const chunks: Buffer[] = []
      for (let at = 0, n = 1000; at < data.length; at += n, n = (n * 7) % 9000 + 500) chunks.push(data.subarray(at, at + n))
      return Readable.from(chunks)
    },
    async write(): Promise<Entry> {
      throw new Error('read-only')
    },
  }
  return adapter
}

describe('torrent storage', () => {
  const data = prngStream('storage')(130_000)
  const meta = metaOf(data)

  it('maps a range onto the files it crosses, skipping empty files', () => {
    expect(spans(meta.files, 65_000, 10_000)).to.deep.equal([
      {file: 0, offset: 65_000, length: 5_000, at: 0},
      {file: 2, offset: 0, length: 5_000, at: 5_000},
    ])
    expect(spans(meta.files, 0, 130_000).map((s) => s.file)).to.deep.equal([0, 2])
  })

  it('reads ranges from a backend that can only stream, forwards and backwards, and verifies every piece', async () => {
    const adapter = streamOnly({'/set/a.bin': data.subarray(0, 70_000), '/set/empty': Buffer.alloc(0), '/set/d/b.bin': data.subarray(70_000)})
    const source = await ContentSource.open(meta, {adapter, path: '/set'})
    for (const [offset, length] of [[0, 100], [69_990, 20], [100_000, 30_000], [5, 16_384], [129_999, 1]]) {
      expect((await source.read(offset, length)).equals(data.subarray(offset, offset + length)), `${offset}+${length}`).to.equal(true)
    }
    // Reading backwards reopened a stream; reading forwards did not.
    const opened = adapter.opens
    expect(opened).to.be.greaterThan(2)
    expect(await source.verify()).to.deep.equal([])
    expect(adapter.opens).to.equal(opened + 2)
    await source.close()
  })

  it('reads local-backend paths directly, and reports a short file', async () => {
    const root = await tempDir()
    await fs.mkdir(path.join(root, 'set', 'd'), {recursive: true})
    await fs.writeFile(path.join(root, 'set', 'a.bin'), data.subarray(0, 70_000))
    await fs.writeFile(path.join(root, 'set', 'empty'), '')
    await fs.writeFile(path.join(root, 'set', 'd', 'b.bin'), data.subarray(70_000))
    const source = await ContentSource.open(meta, {adapter: new LocalBackend(root), path: '/set'})
    expect(await source.verify()).to.deep.equal([])
    expect((await source.read(60_000, 20_000)).equals(data.subarray(60_000, 80_000))).to.equal(true)
    await source.close()
    await fs.writeFile(path.join(root, 'set', 'd', 'b.bin'), data.subarray(70_000, 100_000))
    await ContentSource.open(meta, {adapter: new LocalBackend(root), path: '/set'}).then(
      () => expect.fail('a short file was accepted'),
      (error: Error) => expect(error.message).to.match(/has 30000 bytes; the torrent says 60000/),
    )
    await fs.rm(root, {recursive: true, force: true})
  })

  it('keeps a download hidden until every piece is verified, and resumes from the record', async () => {
    const dest = await tempDir()
    const partial = await PartialContent.open(meta, {dir: dest, shown: dest})
    const piece = (i: number) => data.subarray(i * meta.pieceLength, (i + 1) * meta.pieceLength)
    await partial.writePiece(0, piece(0))
    await partial.writePiece(2, piece(2))
    await partial.suspend()
    expect(await fs.readdir(dest)).to.deep.equal(['.set.part'])
    const again = await PartialContent.open(meta, {dir: dest, shown: dest})
    expect([0, 1, 2, 3].map((i) => again.has(i))).to.deep.equal([true, false, true, false])
    expect(again.resumedBytes).to.equal(2 * meta.pieceLength)
    for (const i of [1, 3]) await again.writePiece(i, piece(i))
    await again.writePiece(4, piece(4))
    expect(again.complete).to.equal(true)
    await again.finish()
    expect(await fs.readdir(dest)).to.deep.equal(['set'])
    expect((await fs.readFile(path.join(dest, 'set', 'a.bin'))).equals(data.subarray(0, 70_000))).to.equal(true)
    expect((await fs.readFile(path.join(dest, 'set', 'd', 'b.bin'))).equals(data.subarray(70_000))).to.equal(true)
    expect((await fs.stat(path.join(dest, 'set', 'empty'))).size).to.equal(0)
    await fs.rm(dest, {recursive: true, force: true})
  })

  it('does not trust a resume record whose pieces do not hash', async () => {
    const dest = await tempDir()
    const partial = await PartialContent.open(meta, {dir: dest, shown: dest})
    await partial.writePiece(1, data.subarray(meta.pieceLength, 2 * meta.pieceLength))
    await partial.suspend()
    // Damage the bytes behind the record.
    const file = path.join(dest, '.set.part', 'content', 'set', 'a.bin')
    const handle = await fs.open(file, 'r+')
    await handle.write(Buffer.from('XXXX'), 0, 4, meta.pieceLength + 10)
    await handle.close()
    const again = await PartialContent.open(meta, {dir: dest, shown: dest})
    expect(again.has(1)).to.equal(false)
    expect(again.resumedBytes).to.equal(0)
    await again.suspend()
    await fs.rm(dest, {recursive: true, force: true})
  })
})
