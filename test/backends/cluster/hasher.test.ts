import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {expect} from 'chai'

import {allocShared, FileHash, isShared, pieceHasher} from '../../../src/backends/cluster/hasher.js'

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

  it('neither keeps a process alive once idle nor lets it exit while it waits for the boot', async () => {
    const hasher = fileURLToPath(new URL('../../../src/backends/cluster/hasher.ts', import.meta.url))
    // Exits by itself within the timeout only if the idle worker is unreferenced;
    // prints "true" only if the process lived until the boot ended.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hasher-exit-'))
    let scripts = 0
    const run = (code: string) =>
      new Promise<{code: number | null; out: string}>((resolve) => {
        const script = path.join(dir, `script${scripts++}.mjs`)
        writeFileSync(script, code)
        const child = execFile(process.execPath, ['--import', 'tsx', script], {timeout: 10_000}, (_error, out) => resolve({code: child.exitCode, out}))
      })
    const waited = await run(`import {pieceHasher} from ${JSON.stringify(hasher)}; console.log(await pieceHasher.ready())`)
    expect(waited).to.deep.equal({code: 0, out: 'true\n'})
    const warmed = await run(`import {pieceHasher} from ${JSON.stringify(hasher)}; pieceHasher.warm()`)
    expect(warmed).to.deep.equal({code: 0, out: ''})
    const hashed = await run(
      `import {allocShared, pieceHasher} from ${JSON.stringify(hasher)}; await pieceHasher.ready(); console.log((await pieceHasher.hash(allocShared(3))).slice(0, 8), pieceHasher.onWorker)`,
    )
    expect(hashed).to.deep.equal({code: 0, out: `${sha256(Buffer.alloc(3)).slice(0, 8)} 1\n`})
    rmSync(dir, {recursive: true, force: true})
  })
})

describe("a file's hash with its pieces' own (FileHash)", () => {
  const pieces = [0, 1, 2, 3].map((i) => {
    const piece = Buffer.alloc(1024 * 1024 + i * 4097)
    for (let j = 0; j < piece.length; j++) piece[j] = (j * 13 + i) & 0xff
    return piece
  })
  const whole = sha256(Buffer.concat(pieces))

  for (const [where, open, onWorker] of [
    ['on the worker (a large file)', () => FileHash.open(64 * 1024 * 1024), true],
    ['on this thread', async () => FileHash.here(), false],
  ] as const) {
    it(`gives each piece's hash and the file's, in shared and plain memory, and leaves a bad copy out, ${where}`, async () => {
      const fileHash = await open()
      expect(fileHash.onWorker).to.equal(onWorker)
      for (const [i, piece] of pieces.entries()) {
        const memory = i % 2 === 0 ? allocShared(piece.length) : Buffer.alloc(piece.length)
        piece.copy(memory)
        if (i === 2) {
          // A damaged copy first: its hash is not the expected one, and it is not part of the file's.
          const bad = Buffer.from(memory)
          bad[100] ^= 1
          expect(await fileHash.add(bad, sha256(piece))).to.equal(sha256(bad))
        }

        expect(await fileHash.add(memory, sha256(piece))).to.equal(sha256(piece))
      }

      expect(await fileHash.digest()).to.equal(whole)
      let error: unknown
      await fileHash.add(pieces[0]).catch((caught: unknown) => (error = caught))
      expect(String(error)).to.contain('already finished')
    })

    it(`takes pieces without an expected hash (an upload names them by it), ${where}`, async () => {
      const fileHash = await open()
      const hashes = await Promise.all(pieces.map((piece) => fileHash.add(piece)))
      expect(hashes).to.deep.equal(pieces.map(sha256))
      expect(await fileHash.digest()).to.equal(whole)
    })
  }

  it('frees a discarded file hash on the worker, and keeps hashing other files', async () => {
    const dropped = await FileHash.open(64 * 1024 * 1024)
    await dropped.add(pieces[0])
    dropped.discard()
    const kept = await FileHash.open(64 * 1024 * 1024)
    for (const piece of pieces) await kept.add(piece)
    expect(await kept.digest()).to.equal(whole)
  })
})
