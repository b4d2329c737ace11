import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import {expect} from 'chai'

import {ConflictError} from '../../../src/base/index.js'
import {createClusterBackend} from '../../../src/backends/cluster/index.js'
import {describeStorageCompliance} from '../../compliance/storage.js'

describeStorageCompliance('cluster (embedded)', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-embedded-'))
  const adapter = await createClusterBackend({
    retries: 0,
    retryBaseMs: 1,
    yandexApiUrl: '',
    localRoot: '',
    dataDir,
    log: () => {},
  })
  return {adapter, teardown: () => fs.rm(dataDir, {recursive: true, force: true})}
})

describe('directory changes from one process (embedded cluster)', function () {
  this.timeout(60_000)
  let dataDir: string
  let adapter: Awaited<ReturnType<typeof createClusterBackend>>

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-embedded-'))
    adapter = await createClusterBackend({retries: 0, retryBaseMs: 1, yandexApiUrl: '', localRoot: '', dataDir, log: () => {}})
  })

  after(async () => {
    await adapter?.close?.()
    await fs.rm(dataDir, {recursive: true, force: true})
  })

  it('lands 200 concurrent uploads into one directory, each exactly once', async () => {
    await adapter.mkdir('/many')
    const names = Array.from({length: 200}, (_, i) => `f${i}.txt`)
    await Promise.all(names.map((name) => adapter.write(`/many/${name}`, Readable.from([Buffer.from(name)]))))
    const listed = []
    for await (const entry of adapter.list('/many')) listed.push(entry.name)
    expect(listed.sort()).to.deep.equal([...names].sort())
    const back = await adapter.openRead('/many/f137.txt')
    const chunks: Buffer[] = []
    for await (const chunk of back) chunks.push(chunk as Buffer)
    expect(Buffer.concat(chunks).toString()).to.equal('f137.txt')
  })

  it('reads back small files intact after later uploads (their piece buffers are reused; the store may keep small values)', async () => {
    // One after another: each upload's tail piece comes from the same process-wide pool of piece buffers.
    const bodies = Array.from({length: 6}, (_, i) => Buffer.alloc(1000 + i * 7000, 97 + i))
    for (const [i, body] of bodies.entries()) await adapter.write(`/small-${i}.bin`, Readable.from([body]))
    for (const [i, body] of bodies.entries()) {
      const chunks: Buffer[] = []
      for await (const chunk of await adapter.openRead(`/small-${i}.bin`)) chunks.push(chunk as Buffer)
      expect(Buffer.concat(chunks).equals(body), `small-${i}.bin`).to.equal(true)
    }
  })

  it('fails only the clashing changes of a batch: one of ten concurrent mkdirs of a name wins, and other names still land', async () => {
    const results = await Promise.allSettled([
      ...Array.from({length: 10}, () => adapter.mkdir('/clash')),
      adapter.mkdir('/other-1'),
      adapter.mkdir('/other-2'),
    ])
    const clash = results.slice(0, 10)
    expect(clash.filter((result) => result.status === 'fulfilled')).to.have.length(1)
    for (const result of clash.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      expect(result.reason).to.be.instanceOf(ConflictError)
    }
    expect(results.slice(10).map((result) => result.status)).to.deep.equal(['fulfilled', 'fulfilled'])
    const names = []
    for await (const entry of adapter.list('/')) names.push(entry.name)
    expect(names).to.include.members(['clash', 'other-1', 'other-2', 'many'])
  })
})

describe('embedded cluster: the header scan waits for the first write', function () {
  this.timeout(60_000)
  let dataDir: string

  beforeEach(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-embedded-'))
  })

  afterEach(() => fs.rm(dataDir, {recursive: true, force: true}))

  it('reads without scanning, and the first write still issues a version past every one on disk', async () => {
    const {EmbeddedStore} = await import('../../../src/backends/cluster/embedded.js')
    const {ServerStore} = await import('../../../src/kv/storage.js')
    // A version an hour ahead of this clock, as a process with a clock running fast would have left.
    const ahead = (Date.now() + 3_600_000) * 1024
    const engine = new ServerStore(path.join(dataDir, 'server0'))
    await engine.open()
    await engine.apply(Buffer.from('1:k'), ahead, false, Buffer.from('old'))
    await engine.close()

    const store = await EmbeddedStore.open(dataDir)
    try {
      expect(await store.holding()).to.equal(true)
      expect((await store.getVersioned(1, 'k'))?.version).to.equal(String(ahead))
      // CAS on the version read, as the directory tree does: the new version must be newer, or the engine refuses it.
      const version = await store.compareAndSet(1, 'k', String(ahead), Buffer.from('new'))
      expect(version).to.not.equal(null)
      expect(Number(version)).to.be.greaterThan(ahead)
      expect((await store.get(1, 'k'))?.toString()).to.equal('new')
      expect((await store.status()).members[0].keys).to.equal(1)
    } finally {
      await store.close()
    }
  })
})
