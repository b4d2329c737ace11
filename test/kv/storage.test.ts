import {randomBytes} from 'node:crypto'
import {mkdir, mkdtemp, readdir, rm, truncate, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {BLOB_MIN_BYTES} from '../../src/kv/blobs.js'
import {KeyFilter, ServerStore} from '../../src/kv/storage.js'

/** Every blob file under a server's data dir, by name. */
async function blobFiles(dir: string): Promise<string[]> {
  const root = path.join(dir, 'blobs')
  const folders = await readdir(root).catch(() => [] as string[])
  const names = await Promise.all(folders.map((folder) => readdir(path.join(root, folder))))
  return names.flat().sort()
}

describe('kv server storage: large values as blob files', () => {
  let dir: string
  let store: ServerStore
  const key = Buffer.from('2:p:piece')
  const big = (fill?: number) => (fill === undefined ? randomBytes(BLOB_MIN_BYTES + 1000) : Buffer.alloc(BLOB_MIN_BYTES, fill))

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kv-storage-'))
    store = new ServerStore(dir)
    await store.open()
  })

  afterEach(async () => {
    await store.close().catch(() => undefined)
    await rm(dir, {recursive: true, force: true})
  })

  it('keeps a small value in LevelDB and a large one in one file, and reads both back', async () => {
    const value = big()
    expect(await store.apply(Buffer.from('0:small'), 1, false, Buffer.from('tiny'))).to.equal(true)
    expect(await store.apply(key, 1, false, value)).to.equal(true)
    expect(await blobFiles(dir)).to.have.length(1)
    expect((await store.getValue(Buffer.from('0:small')))?.toString()).to.equal('tiny')
    expect((await store.getValue(key))?.equals(value)).to.equal(true)
    const record = await store.getRecord(key)
    expect(record).to.include({version: 1, tomb: false})
    expect(await store.getHeader(key)).to.deep.equal({version: 1, tomb: false})
    expect(store.liveKeys).to.equal(2)
  })

  it('removes the file of a replaced version, and of a deleted key, once the change is committed', async () => {
    await store.apply(key, 1, false, big(1))
    const first = await blobFiles(dir)
    await store.apply(key, 2, false, big(2))
    const second = await blobFiles(dir)
    expect(second).to.have.length(1)
    expect(second).to.not.deep.equal(first)
    expect((await store.getValue(key))?.equals(big(2))).to.equal(true)
    // An older version is refused and writes no file.
    expect(await store.apply(key, 1, false, big(3))).to.equal(false)
    expect(await blobFiles(dir)).to.deep.equal(second)
    await store.apply(key, 3, true, null)
    expect(await blobFiles(dir)).to.deep.equal([])
    expect(await store.getValue(key)).to.equal(undefined)
    expect(await store.getHeader(key)).to.include({version: 3, tomb: true})
    // A large value that replaces a small one, in the same group commit as its own replacement.
    await Promise.all([store.apply(key, 4, false, Buffer.from('small')), store.apply(key, 5, false, big(5)), store.apply(key, 6, false, big(6))])
    expect(await blobFiles(dir)).to.have.length(1)
    expect((await store.getValue(key))?.equals(big(6))).to.equal(true)
  })

  it("starts a new key's blob write at once, beside the batch in flight, and keeps only the blobs its batch makes current", async () => {
    const started: string[] = []
    const write = store.blobs.write.bind(store.blobs)
    store.blobs.write = (name, data) => {
      started.push(name)
      return write(name, data)
    }
    // A new key, nothing pending: its blob is being written before apply() returns.
    const fresh = Buffer.from('2:p:fresh')
    const stored = store.apply(fresh, 7, false, big(7))
    expect(started).to.deep.equal([store.blobs.name(fresh, 7)])
    expect(await stored).to.equal(true)
    expect((await store.getValue(fresh))?.equals(big(7))).to.equal(true)

    // A new key written twice at once: the first blob is written early, the
    // second write is queued at once and commits first; the first then finds
    // a newer version, is refused, and its file removed.
    const twice = Buffer.from('2:p:twice')
    expect(await Promise.all([store.apply(twice, 1, false, big(1)), store.apply(twice, 2, false, big(2))])).to.deep.equal([false, true])
    expect((await store.getValue(twice))?.equals(big(2))).to.equal(true)
    // The other order: the older version commits first and is replaced (its file removed) by the early one.
    const late = Buffer.from('2:p:late')
    expect(await Promise.all([store.apply(late, 5, false, big(5)), store.apply(late, 4, false, big(4))])).to.deep.equal([true, true])
    expect((await store.getValue(late))?.equals(big(5))).to.equal(true)
    const names = [store.blobs.name(fresh, 7), store.blobs.name(twice, 2), store.blobs.name(late, 5)].sort()
    expect(await blobFiles(dir)).to.deep.equal(names)

    // A failed early write fails that write alone and leaves no file; the store keeps working.
    store.blobs.write = async (name) => {
      started.push(name)
      throw new Error('EIO: i/o error, write')
    }
    const broken = Buffer.from('2:p:broken')
    let failure: unknown
    const beside = store.apply(Buffer.from('0:beside'), 1, false, Buffer.from('small'))
    await store.apply(broken, 1, false, big(1)).catch((error: unknown) => (failure = error))
    expect((failure as Error).message).to.match(/EIO/)
    expect(await beside).to.equal(true)
    expect(started.at(-1)).to.equal(store.blobs.name(broken, 1))
    expect(await store.getHeader(broken)).to.equal(null)
    store.blobs.write = write
    expect(await store.apply(broken, 2, false, big(2))).to.equal(true)
    expect(await blobFiles(dir)).to.deep.equal([...names, store.blobs.name(broken, 2)].sort())
    await store.close()
    store = new ServerStore(dir)
    await store.open()
    expect((await store.getValue(twice))?.equals(big(2))).to.equal(true)
    expect((await store.getValue(broken))?.equals(big(2))).to.equal(true)
  })

  it("commits small writes while a new key's blob is still being written, and that key once its file is complete", async () => {
    const write = store.blobs.write.bind(store.blobs)
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    store.blobs.write = async (name, data) => {
      await held
      return write(name, data)
    }
    const piece = Buffer.from('2:p:slow')
    let stored = false
    const storing = store.apply(piece, 1, false, big(1)).then((applied) => (stored = applied))
    // The small write does not wait for the blob: it commits while the file is still being written.
    expect(await store.apply(Buffer.from('1:intent'), 2, false, Buffer.from('pieces'))).to.equal(true)
    expect(stored).to.equal(false)
    expect(await store.getHeader(piece)).to.equal(null)
    release()
    await storing
    expect(stored).to.equal(true)
    expect((await store.getValue(piece))?.equals(big(1))).to.equal(true)
  })

  it('keeps blobs, digests and counts across a restart, and sweeps files no header names', async () => {
    const value = big()
    await store.apply(key, 7, false, value)
    const digests = Buffer.from(store.digests())
    await store.close()
    // What a crash between a blob write and its batch would leave behind.
    await mkdir(path.join(dir, 'blobs', 'ab'), {recursive: true})
    await writeFile(path.join(dir, 'blobs', 'ab', `${'ab'.padEnd(64, '0')}-1`), 'orphan')
    expect(await blobFiles(dir)).to.have.length(2)
    store = new ServerStore(dir)
    await store.open()
    expect(await blobFiles(dir)).to.have.length(1)
    expect((await store.getValue(key))?.equals(value)).to.equal(true)
    expect(store.digests().equals(digests)).to.equal(true)
    expect(store.liveKeys).to.equal(1)
  })

  it('with deferScan, reads without scanning, and scans (sweep, digests, counts, highest version) before the first write', async () => {
    const value = big()
    await store.apply(key, 7, false, value)
    await store.apply(Buffer.from('0:small'), 9, false, Buffer.from('tiny'))
    const digests = Buffer.from(store.digests())
    await store.close()
    await mkdir(path.join(dir, 'blobs', 'ab'), {recursive: true})
    const orphan = path.join(dir, 'blobs', 'ab', `${'ab'.padEnd(64, '0')}-1`)
    await writeFile(orphan, 'orphan')
    store = new ServerStore(dir)
    await store.open({deferScan: true})
    // Reads work at once; nothing is known or swept yet.
    expect((await store.getValue(key))?.equals(value)).to.equal(true)
    expect(await store.getHeader(Buffer.from('0:small'))).to.deep.equal({version: 9, tomb: false})
    expect(store.highestVersion).to.equal(0)
    expect(store.liveKeys).to.equal(0)
    expect(await blobFiles(dir)).to.have.length(2)
    // The first write runs the scan first: the orphan goes, the counts and digests are those of a full open.
    expect(await store.apply(Buffer.from('0:other'), 3, false, Buffer.from('x'))).to.equal(true)
    expect(store.highestVersion).to.equal(9)
    expect(store.liveKeys).to.equal(3)
    expect(await blobFiles(dir)).to.have.length(1)
    await store.close()
    store = new ServerStore(dir)
    await store.open()
    expect(store.liveKeys).to.equal(3)
    // The scan ran once: the digests after the write equal a fresh open's, not the pre-write ones.
    const reopened = Buffer.from(store.digests())
    expect(reopened.equals(digests)).to.equal(false)
    await store.close()
    store = new ServerStore(dir)
    await store.open({deferScan: true})
    await store.scan()
    expect(store.digests().equals(reopened)).to.equal(true)
  })

  it('reports a damaged blob as an error, not as other bytes', async () => {
    await store.apply(key, 1, false, big())
    const [name] = await blobFiles(dir)
    await truncate(path.join(dir, 'blobs', name.slice(0, 2), name), 10)
    let failure: unknown
    await store.getValue(key).catch((error: unknown) => (failure = error))
    expect((failure as Error).message).to.match(/^ERR blob .* is damaged/)
  })

  it('writes blobs with fsync when every write is synced', async () => {
    await store.close()
    store = new ServerStore(dir, {syncWrites: true})
    await store.open()
    const value = big()
    expect(await store.apply(key, 1, false, value)).to.equal(true)
    expect((await store.getValue(key))?.equals(value)).to.equal(true)
  })
})

describe('kv server storage: several writes of one key in one group commit', () => {
  let dir: string
  let other: string

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kv-storage-'))
    other = await mkdtemp(path.join(tmpdir(), 'kv-storage-'))
  })

  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
    await rm(other, {recursive: true, force: true})
  })

  it('acknowledges each newer one, keeps the newest, and leaves the digests, counts and restart as if only it was written', async () => {
    const store = new ServerStore(dir)
    await store.open()
    const hot = Buffer.from('0:hot')
    const gone = Buffer.from('0:gone')
    await store.apply(gone, 1, false, Buffer.from('old'))
    // Issued in one turn: one batch. Version 3 after 5 is stale and refused; a tombstone in between is superseded.
    const outcomes = await Promise.all([
      store.apply(hot, 2, false, Buffer.from('a')),
      store.apply(hot, 4, true, null),
      store.apply(hot, 5, false, Buffer.from('b')),
      store.apply(hot, 3, false, Buffer.from('stale')),
      store.apply(hot, 7, false, Buffer.from('c')),
      store.apply(gone, 2, false, Buffer.from('x')),
      store.apply(gone, 6, true, null),
    ])
    expect(outcomes).to.deep.equal([true, true, true, false, true, true, true])
    expect((await store.getValue(hot))?.toString()).to.equal('c')
    expect(await store.getHeader(gone)).to.include({version: 6, tomb: true})
    expect(store.liveKeys).to.equal(1)
    const digests = Buffer.from(store.digests())
    await store.close()

    // The same final state written one version per key.
    const plain = new ServerStore(other)
    await plain.open()
    await plain.apply(hot, 7, false, Buffer.from('c'))
    await plain.apply(gone, 6, true, null)
    expect(Buffer.from(plain.digests()).equals(digests)).to.equal(true)
    await plain.close()

    // LevelDB holds exactly that: a reopened store (no cache) reads it back and scans the same digests.
    const reopened = new ServerStore(dir)
    await reopened.open()
    try {
      expect(await reopened.getRecord(hot)).to.deep.include({version: 7, tomb: false})
      expect((await reopened.getValue(hot))?.toString()).to.equal('c')
      expect(await reopened.getHeader(gone)).to.include({version: 6, tomb: true})
      expect(await reopened.getValue(gone)).to.equal(undefined)
      expect(reopened.liveKeys).to.equal(1)
      expect(Buffer.from(reopened.digests()).equals(digests)).to.equal(true)
    } finally {
      await reopened.close()
    }
  })
})

describe('kv server storage: writes of new keys skip the version read', () => {
  let dir: string

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kv-storage-'))
  })

  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('a key filter never loses a key it was given, through growth', () => {
    const filter = new KeyFilter()
    const keys = Array.from({length: 50_000}, (_, i) => Buffer.from(`0:key:${i}`))
    for (const key of keys) filter.add(KeyFilter.fingerprint(key))
    expect(keys.every((key) => filter.has(KeyFilter.fingerprint(key)))).to.equal(true)
    expect(filter.size).to.be.within(49_990, 50_000)
    // Most keys it was not given are absent (a present one only costs a read).
    const others = Array.from({length: 10_000}, (_, i) => Buffer.from(`1:other:${i}`)).filter((key) => filter.has(KeyFilter.fingerprint(key)))
    expect(others.length).to.be.below(100)
  })

  it('reads no header for a new key, still reads one for a key it holds after a restart (and refuses a stale version)', async () => {
    const store = new ServerStore(dir, {cacheBytes: 0})
    await store.open()
    let reads = 0
    const count = (target: ServerStore): void => {
      const getMany = target.db.getMany.bind(target.db)
      target.db.getMany = ((keys: Buffer[], options?: unknown) => {
        reads++
        return getMany(keys, options as never)
      }) as typeof target.db.getMany
    }
    count(store)
    const keys = Array.from({length: 100}, (_, i) => Buffer.from(`0:k${i}`))
    const outcomes = await Promise.all(keys.map((key) => store.apply(key, 10, false, Buffer.from('v'))))
    expect(outcomes.every(Boolean)).to.equal(true)
    expect(reads).to.equal(0)
    // With no cache, a key it holds is read before it is overwritten: stale refused, newer applied.
    expect(await store.apply(keys[0], 5, false, Buffer.from('old'))).to.equal(false)
    expect(reads).to.equal(1)
    expect(await store.apply(keys[1], 11, false, Buffer.from('new'))).to.equal(true)
    await store.close()

    // After a restart the open-time scan knows every key again.
    const reopened = new ServerStore(dir, {cacheBytes: 0})
    await reopened.open()
    reads = 0
    count(reopened)
    try {
      expect(await reopened.apply(keys[2], 9, true, null)).to.equal(false)
      expect(reads).to.equal(1)
      expect(await reopened.apply(Buffer.from('0:fresh'), 1, false, Buffer.from('x'))).to.equal(true)
      expect(reads).to.equal(1)
      expect((await reopened.getValue(keys[1]))?.toString()).to.equal('new')
      expect((await reopened.getValue(keys[2]))?.toString()).to.equal('v')
      expect(reopened.liveKeys).to.equal(101)
    } finally {
      await reopened.close()
    }
  })
})

describe('kv server storage: reads of keys it never held', () => {
  let dir: string

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kv-storage-'))
  })

  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  /** Counts LevelDB point reads (get and getMany) on a real store. */
  function countReads(store: ServerStore): {reads: number} {
    const counter = {reads: 0}
    const get = store.db.get.bind(store.db)
    const getMany = store.db.getMany.bind(store.db)
    store.db.get = ((key: Buffer, options?: unknown) => {
      counter.reads++
      return get(key, options as never)
    }) as typeof store.db.get
    store.db.getMany = ((keys: Buffer[], options?: unknown) => {
      counter.reads++
      return getMany(keys, options as never)
    }) as typeof store.db.getMany
    return counter
  }

  it('answers them as missing without a LevelDB read once it knows every key, and reads held keys as before', async () => {
    const store = new ServerStore(dir, {cacheBytes: 0})
    await store.open()
    await store.apply(Buffer.from('0:here'), 3, false, Buffer.from('v'))
    await store.apply(Buffer.from('0:dead'), 4, true, null)
    await store.close()

    // Opened with deferScan: until the scan, every read goes to LevelDB, and answers the same.
    const reopened = new ServerStore(dir, {cacheBytes: 0})
    await reopened.open({deferScan: true})
    const counter = countReads(reopened)
    try {
      expect(await reopened.getRecord(Buffer.from('0:never'))).to.equal(null)
      expect(await reopened.getHeader(Buffer.from('0:never'))).to.equal(null)
      expect(counter.reads).to.equal(2)
      await reopened.scan()
      counter.reads = 0
      expect(await reopened.getRecord(Buffer.from('0:never'))).to.equal(null)
      expect(await reopened.getHeader(Buffer.from('0:never'))).to.equal(null)
      expect(await reopened.getValue(Buffer.from('0:never'))).to.equal(undefined)
      expect(counter.reads).to.equal(0)
      expect((await reopened.getValue(Buffer.from('0:here')))?.toString()).to.equal('v')
      expect(await reopened.getHeader(Buffer.from('0:dead'))).to.include({version: 4, tomb: true})
      expect(counter.reads).to.equal(2)
      // A key written since is known at once.
      await reopened.apply(Buffer.from('0:new'), 5, false, Buffer.from('n'))
      expect((await reopened.getValue(Buffer.from('0:new')))?.toString()).to.equal('n')
    } finally {
      await reopened.close()
    }
  })
})

describe('a full disk on a kv server', () => {
  it('refuses the write with NOSPACE, which the cluster backend reports as a no-space conflict (exit 6), and stores nothing', async () => {
    const {KvRouter} = await import('../../src/kv/router.js')
    const {KvServer} = await import('../../src/kv/server.js')
    const {RespClusterStore} = await import('../../src/backends/cluster/kv-store.js')
    const {ConflictError} = await import('../../src/base/index.js')
    const dir = await mkdtemp(path.join(tmpdir(), 'kv-full-'))
    const router = new KvRouter({host: '127.0.0.1', port: 0, servers: 1, replicas: 1, dataDir: path.join(dir, 'router')})
    await router.start()
    const server = new KvServer({number: 0, host: '127.0.0.1', port: 0, dataDir: path.join(dir, 'server0'), router: router.address})
    await server.start()
    const store = new RespClusterStore(`${router.address.host}:${router.address.port}`)
    try {
      const deadline = Date.now() + 5000
      while (router.members.members[0]?.state !== 'up' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
      // The disk fills up: the next blob cannot be written.
      server.store.blobs.write = async () => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {code: 'ENOSPC'})
      }
      let failure: unknown
      await store.set(2, 'p:full', randomBytes(BLOB_MIN_BYTES)).catch((error: unknown) => (failure = error))
      expect(failure).to.be.instanceOf(ConflictError)
      expect(failure).to.include({reason: 'no-space', exitCode: 6, backendCode: 'NOSPACE'})
      expect(await store.get(2, 'p:full')).to.equal(null)
      expect(await blobFiles(path.join(dir, 'server0'))).to.deep.equal([])
      // Small values still fit in LevelDB, and the server keeps serving.
      await store.set(2, 'small', Buffer.from('ok'))
      expect((await store.get(2, 'small'))?.toString()).to.equal('ok')
    } finally {
      await store.close()
      await server.stop()
      await router.stop()
      await rm(dir, {recursive: true, force: true})
    }
  })
})
