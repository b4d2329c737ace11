import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import {LocalBackend} from '../../src/backends/local/index.js'
import {markRecyclable} from '../../src/backends/recycle.js'

describe('recycled buffers through the local backend writer', () => {
  let root: string
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-recycle-'))
  })
  after(() => fs.rm(root, {recursive: true, force: true}))

  it('hands back each marked chunk once, only after its bytes are written, and the file is exact', async () => {
    const chunks = Array.from({length: 40}, (_, i) => createHash('sha512').update(`chunk ${i}`).digest().subarray(0, 37 + i))
    const want = Buffer.concat(chunks)
    const returned: Buffer[] = []
    // Each buffer is wiped as it comes back, as a reused one would be overwritten: the file must not show it.
    for (const chunk of chunks.slice(0, 30)) markRecyclable(chunk, (buffer) => returned.push(Buffer.from(buffer.fill(0))))
    // The first 15 one at a time (each written alone: the writer's _write), the rest in a burst (its _writev).
    async function* source(): AsyncGenerator<Buffer> {
      for (const [i, chunk] of chunks.entries()) {
        yield chunk
        while (i < 15 && returned.length <= i) await new Promise((resolve) => setImmediate(resolve))
      }
    }
    const backend = new LocalBackend(root)
    await backend.write('/out.bin', Readable.from(source()), {})
    expect(returned.length, 'every marked chunk came back').to.equal(30)
    expect(returned.every((buffer) => buffer.every((byte) => byte === 0))).to.equal(true)
    const got = await fs.readFile(path.join(root, 'out.bin'))
    expect(got.equals(want), 'the file holds the bytes as they were before they were handed back').to.equal(true)
  })
})
