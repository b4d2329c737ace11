import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import {expect} from 'chai'

import type {ClusterBackend} from '../../../src/backends/cluster/adapter.js'
import {EmbeddedStore, socketPath} from '../../../src/backends/cluster/embedded.js'
import {createClusterBackend} from '../../../src/backends/cluster/index.js'
import {IntegrityError, NotFoundError} from '../../../src/base/index.js'
import {LocalBackend} from '../../../src/backends/local/index.js'
import {RespClusterStore} from '../../../src/backends/cluster/kv-store.js'
import {LARGE_FILE_BYTES, LARGE_PIECE_SIZE} from '../../../src/backends/cluster/manifest.js'
import {RespClient, RespConnectionError} from '../../../src/kv/client.js'
import {RouterStore} from '../../../src/kv/hints.js'
import {KvRouter} from '../../../src/kv/router.js'
import {KvServer} from '../../../src/kv/server.js'
import {LOGICAL_BITS} from '../../../src/kv/versions.js'

describe('the embedded data dir shared by several stores', function () {
  this.timeout(60_000)
  let dataDir: string
  const open: EmbeddedStore[] = []

  const openStore = async (dir = dataDir): Promise<EmbeddedStore> => {
    const store = await EmbeddedStore.open(dir, {acquireWaitMs: 10_000})
    open.push(store)
    return store
  }

  beforeEach(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-shared-'))
  })

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close()
    await fs.rm(dataDir, {recursive: true, force: true})
  })

  it('makes the second store attach to the first, with compare-and-set and versions shared', async () => {
    const first = await openStore()
    const second = await openStore()
    expect(await first.holding()).to.equal(true)
    expect(await second.holding()).to.equal(false)
    const v1 = await second.compareAndSet(1, 'dir', null, Buffer.from('one'))
    expect(v1).to.be.a('string')
    expect(await first.compareAndSet(1, 'dir', null, Buffer.from('clash'))).to.equal(null)
    const v2 = await first.compareAndSet(1, 'dir', v1, Buffer.from('two'))
    expect(Number(v2)).to.be.greaterThan(Number(v1))
    expect(await second.getVersioned(1, 'dir')).to.deep.equal({value: Buffer.from('two'), version: v2})
    expect(await second.currentVersion(1, 'dir')).to.equal(v2)
    await second.set(2, 'piece', Buffer.alloc(200_000, 7))
    expect(await second.existsMany(2, ['piece', 'none'])).to.deep.equal([true, false])
    expect((await first.get(2, 'piece'))?.equals(Buffer.alloc(200_000, 7))).to.equal(true)
    expect(await second.keys(2, 'pi*')).to.deep.equal(['piece'])
    await second.del(2, ['piece'])
    expect(await first.get(2, 'piece')).to.equal(null)
    expect(await second.compareAndSet(1, 'dir', v2, null)).to.be.a('string')
    expect(await first.getVersioned(1, 'dir')).to.equal(null)
    expect((await second.status()).members[0]).to.include({state: 'up', addr: `process ${process.pid}`})
  })

  it('lets an attached store take the data dir over when the holder lets go, with every write kept', async () => {
    const first = await openStore()
    const second = await openStore()
    const version = await second.compareAndSet(1, 'k', null, Buffer.from('before'))
    await first.close()
    expect(await second.get(1, 'k')).to.deep.equal(Buffer.from('before'))
    expect(await second.holding()).to.equal(true)
    const next = await second.compareAndSet(1, 'k', version, Buffer.from('after'))
    expect(Number(next)).to.be.greaterThan(Number(version))
  })

  it('serves a process that attaches while the new holder is still starting, and its close() ends that connection', async () => {
    // 'lock' as a FIFO holds the new holder inside its start-up: it listens,
    // then blocks writing its pid until this test reads it. A process that
    // attached in that window (the others retrying at once after a takeover)
    // used to get a connection nobody served: no reply ever, and the
    // holder's close() then waited for it forever.
    const lock = path.join(dataDir, 'lock')
    execFileSync('mkfifo', [lock])
    const starting = EmbeddedStore.open(dataDir, {acquireWaitMs: 10_000})
    let started = false
    void starting.then(() => (started = true), () => undefined)
    const sock = path.join(dataDir, 'sock')
    const deadline = Date.now() + 20_000
    while (!(await fs.stat(sock).catch(() => null))) {
      if (Date.now() > deadline) throw new Error('the holder never listened')
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const early = await RespClient.connect({host: 'embedded', port: 0, path: sock})
    let released = false
    try {
      const reply = await within(early.call('PING'), 10_000, 'no reply to a command sent while the holder was starting')
      expect(String(reply)).to.equal('PONG')
      expect(started, 'the holder finished starting before the test let it').to.equal(false)
      released = true
      expect(await fs.readFile(lock, 'utf8')).to.equal(String(process.pid))
      await fs.rm(lock)
      const store = await starting
      expect(await store.holding()).to.equal(true)
      expect(await early.call('GET', 0, 'x')).to.equal(null)
      await within(store.close(), 10_000, "the holder's close() waited on the early connection")
      const closed = await early.call('PING').then(
        () => null,
        (failure: unknown) => failure,
      )
      expect(closed).to.be.instanceOf(RespConnectionError)
    } finally {
      early.close()
      // Let a holder still blocked on the FIFO finish starting, so it can be closed.
      if (!released) await fs.readFile(lock)
      await fs.rm(lock, {force: true})
      // Bounded: with the bug this close() never ends, and the failure above is the one to show.
      await within(
        starting.then((store) => store.close()),
        10_000,
        'close',
      ).catch(() => undefined)
    }
  })

  const exchange = (bytes: string | Buffer): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      const socket = net.connect({path: path.join(dataDir, 'sock')})
      let text = ''
      socket.on('data', (chunk) => (text += chunk.toString('latin1')))
      socket.on('close', () => resolve(text))
      socket.on('error', reject)
      socket.end(bytes)
    })

  it('answers unknown commands and garbage on its socket with errors, and keeps serving', async () => {
    await openStore()
    expect(await exchange('*2\r\n$4\r\nNOPE\r\n$1\r\nx\r\n')).to.match(/^-ERR unknown command/)
    expect(await exchange('*3\r\n$3\r\nGET\r\n$2\r\n99\r\n$1\r\nx\r\n')).to.match(/^-ERR DB index/)
    expect(await exchange(Buffer.from([0x2a, 0x78, 0xff, 0x00, 0x0d, 0x0a, 0x24, 0x2d, 0x39, 0x0d, 0x0a]))).to.match(/^-ERR/)
    const other = await openStore()
    await other.set(0, 'still', Buffer.from('here'))
    expect(await other.get(0, 'still')).to.deep.equal(Buffer.from('here'))
  })

  it('uses an abstract socket when the data dir path is too long for a Unix socket', async () => {
    const deep = path.join(dataDir, 'x'.repeat(60), 'y'.repeat(60))
    expect(await socketPath(path.join(dataDir, 'short'))).to.equal(path.join(dataDir, 'short', 'sock'))
    const first = await openStore(deep)
    expect(await socketPath(deep)).to.match(/^\0disk-client-[0-9a-f]{32}$/)
    const second = await openStore(deep)
    expect(await second.holding()).to.equal(false)
    await second.set(0, 'deep', Buffer.from('ok'))
    expect(await first.get(0, 'deep')).to.deep.equal(Buffer.from('ok'))
  })

  it('fails a download whose stored piece was damaged (no other copy to switch to)', async () => {
    const adapter = await createClusterBackend({retries: 0, retryBaseMs: 1, yandexApiUrl: '', localRoot: '', dataDir, log: () => {}})
    try {
      const content = Buffer.alloc(3 * 1024 * 1024 + 5)
      for (let i = 0; i < content.length; i++) content[i] = (i * 7919) % 251
      await adapter.write('/f.bin', Readable.from([content]))
      const blobs = path.join(dataDir, 'server0', 'blobs')
      const files: string[] = []
      for (const folder of await fs.readdir(blobs)) for (const name of await fs.readdir(path.join(blobs, folder))) files.push(path.join(blobs, folder, name))
      // Damage one byte of every 1 MiB blob (the pieces; the manifest is small).
      let damaged = 0
      for (const file of files) {
        const data = await fs.readFile(file)
        if (data.length !== 1024 * 1024) continue
        data[12345] ^= 0xff
        await fs.writeFile(file, data)
        damaged++
      }
      expect(damaged).to.equal(3)
      const chunks: Buffer[] = []
      const reading = (async () => {
        for await (const chunk of await adapter.openRead('/f.bin')) chunks.push(chunk as Buffer)
      })()
      await reading.then(
        () => expect.fail('the damaged file downloaded without an error'),
        (error: unknown) => expect(error).to.be.instanceOf(IntegrityError),
      )
    } finally {
      await adapter.close?.()
    }
  })

  it('cuts a large file into 4 MiB pieces, reads it back, and fails its download once one piece is damaged', async () => {
    const adapter = await createClusterBackend({retries: 0, retryBaseMs: 1, yandexApiUrl: '', localRoot: '', dataDir, log: () => {}})
    try {
      const size = LARGE_FILE_BYTES + 5
      const content = Buffer.alloc(size)
      for (let i = 0; i < content.length; i += 4096) content.writeUInt32BE(i, i)
      const chunks = Array.from({length: Math.ceil(size / (1024 * 1024))}, (_, i) => content.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024))
      await (adapter as ClusterBackend).write('/large.bin', Readable.from(chunks), {size})
      const manifest = await (adapter as ClusterBackend).manifestOf('/large.bin')
      expect(manifest.pieceSize).to.equal(LARGE_PIECE_SIZE)
      expect(manifest.pieces).to.have.length(Math.ceil(size / LARGE_PIECE_SIZE))
      expect(manifest.sha256).to.equal(createHash('sha256').update(content).digest('hex'))
      const read = async () => {
        const hash = createHash('sha256')
        let bytes = 0
        for await (const chunk of await adapter.openRead('/large.bin')) {
          hash.update(chunk as Buffer)
          bytes += (chunk as Buffer).length
        }
        return {bytes, sha256: hash.digest('hex')}
      }
      expect(await read()).to.deep.equal({bytes: size, sha256: manifest.sha256})

      // Straight into a local file at positions (readInto, as a download to a folder goes).
      const folder = await fs.mkdtemp(path.join(dataDir, 'into-'))
      const local = new LocalBackend(folder)
      expect(adapter.readsInto?.(await adapter.stat('/large.bin'))).to.equal(true)
      let progress = 0
      const entry = await local.writeFrom!('/large.bin', (sink) => adapter.readInto!('/large.bin', sink, {onProgress: (bytes) => (progress += bytes)}), {
        expect: {sha256: manifest.sha256},
      })
      expect(entry.size).to.equal(size)
      expect(progress).to.equal(size)
      expect((await fs.readFile(path.join(folder, 'large.bin'))).equals(content)).to.equal(true)
      const missing = await local.writeFrom!('/missing.bin', (sink) => adapter.readInto!('/missing.bin', sink)).catch((error: unknown) => error)
      expect(missing).to.be.instanceOf(NotFoundError)

      const blobs = path.join(dataDir, 'server0', 'blobs')
      let damaged = 0
      for (const folder of await fs.readdir(blobs)) {
        for (const name of await fs.readdir(path.join(blobs, folder))) {
          const file = path.join(blobs, folder, name)
          if (damaged > 0 || (await fs.stat(file)).size !== LARGE_PIECE_SIZE) continue
          const data = await fs.readFile(file)
          data[LARGE_PIECE_SIZE - 1] ^= 0x01
          await fs.writeFile(file, data)
          damaged++
        }
      }
      expect(damaged).to.equal(1)
      await read().then(
        () => expect.fail('the damaged file downloaded without an error'),
        (error: unknown) => expect(error).to.be.instanceOf(IntegrityError),
      )
      const failed = await local.writeFrom!('/damaged.bin', (sink) => adapter.readInto!('/large.bin', sink)).catch((error: unknown) => error)
      expect(failed).to.be.instanceOf(IntegrityError)
      // Neither the file nor its temporary file is left behind.
      expect(await fs.readdir(folder)).to.deep.equal(['large.bin'])
    } finally {
      await adapter.close?.()
    }
  })

  it("reads a data dir of the old layout (a router and server0) and replays what the old router still held", async () => {
    const router = new KvRouter({host: '127.0.0.1', port: 0, servers: 1, replicas: 1, dataDir: path.join(dataDir, 'router'), antiEntropyMs: 0})
    await router.start()
    const server = new KvServer({number: 0, host: '127.0.0.1', port: 0, dataDir: path.join(dataDir, 'server0'), router: router.address})
    await server.start()
    while (router.members.members[0]?.state !== 'up') await new Promise((resolve) => setTimeout(resolve, 10))
    const old = new RespClusterStore(`127.0.0.1:${router.address.port}`)
    const oldVersion = await old.compareAndSet(1, 'dir', null, Buffer.from('written by the old layout'))
    await old.set(2, 'piece', Buffer.alloc(100_000, 3))
    await old.close()
    await server.stop()
    await router.stop()
    // A write the old router buffered (its server was down) and never delivered.
    const pending = new RouterStore(path.join(dataDir, 'router'))
    await pending.open()
    const bufferedVersion = Number(oldVersion) + 5 * LOGICAL_BITS
    await pending.addBuffered(Buffer.from('1:buffered'), {version: bufferedVersion, tomb: false, value: Buffer.from('only in the router')})
    await pending.close()

    const store = await openStore()
    expect(await store.getVersioned(1, 'dir')).to.deep.equal({value: Buffer.from('written by the old layout'), version: oldVersion})
    expect((await store.get(2, 'piece'))?.equals(Buffer.alloc(100_000, 3))).to.equal(true)
    expect(await store.get(1, 'buffered')).to.deep.equal(Buffer.from('only in the router'))
    expect(await fs.readdir(dataDir)).not.to.include('router')
    const next = await store.compareAndSet(1, 'buffered', String(bufferedVersion), Buffer.from('newer'))
    expect(Number(next)).to.be.greaterThan(bufferedVersion)
  })
})

/** `promise`, or a failure saying `what` if it has not settled after `ms` (the wait ends as soon as it settles). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} (${ms} ms)`)), ms)))])
  } finally {
    clearTimeout(timer)
  }
}
