// The webdav: backend against a real Apache httpd with mod_dav (test/helpers/apache.ts).
import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import {expect} from 'chai'

import {ConflictError, IntegrityError} from '../../src/base/index.js'

import {createWebDavBackend} from '../../src/backends/webdav/index.js'
import {describeStorageCompliance} from '../compliance/storage.js'
import {apacheDav, freePort, type ApacheDav} from '../helpers/apache.js'
import {runCli} from '../helpers/cli.js'

function settings(dav: ApacheDav, password = dav.password) {
  return {retries: 0, retryBaseMs: 1, yandexApiUrl: '', localRoot: '', dataDir: '', log: () => {}, webdavUrl: dav.url, webdavUser: dav.user, webdavPassword: password}
}

function davEnv(dav: ApacheDav, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {WEBDAV_URL: dav.url, WEBDAV_USER: dav.user, WEBDAV_PASSWORD: dav.password, ...extra}
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** A file of `size` bytes of seeded pseudo-random content, written in 1 MiB chunks. */
async function makeFile(file: string, size: number, seed: number): Promise<void> {
  const out = createWriteStream(file)
  let state = seed >>> 0
  for (let written = 0; written < size; ) {
    const chunk = Buffer.alloc(Math.min(1 << 20, size - written))
    for (let i = 0; i < chunk.length; i += 4) {
      state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0
      chunk.writeUInt32LE(state, i)
    }

    written += chunk.length
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()))
  }

  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())))
}

/** Access-log lines (`METHOD PATH STATUS IN OUT`) written after `from` bytes. */
async function accessSince(dav: ApacheDav, from: number): Promise<Array<{method: string; path: string; status: number; in: number; out: number}>> {
  const text = (await fs.readFile(dav.accessLog)).subarray(from).toString()
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [method, p, status, bytesIn, bytesOut] = line.split(' ')
      return {method, path: p, status: Number(status), in: Number(bytesIn), out: Number(bytesOut)}
    })
}

async function logSize(dav: ApacheDav): Promise<number> {
  return (await fs.stat(dav.accessLog).catch(() => ({size: 0}))).size
}

/** Apache writes a request's log line after its reply: wait for `count` lines past `from`. */
async function untilLogged(dav: ApacheDav, from: number, match: (method: string) => boolean, count = 1) {
  const deadline = Date.now() + 10_000
  for (;;) {
    const lines = await accessSince(dav, from)
    if (lines.filter((l) => match(l.method)).length >= count || Date.now() > deadline) return lines
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describeStorageCompliance('webdav (Apache mod_dav)', async () => {
  const dav = await apacheDav()
  return {adapter: await createWebDavBackend(settings(dav))}
})

describe('webdav: backend writes, against Apache mod_dav', function () {
  it('aborts a PUT whose content does not match the expected hash, leaving no file', async () => {
    const dav = await apacheDav()
    const adapter = await createWebDavBackend(settings(dav))
    try {
      const data = Buffer.alloc(3 << 20, 7)
      const error = await adapter
        .write('/bad-hash.bin', Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), {size: data.length, expect: {sha256: '0'.repeat(64)}})
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(error).to.be.instanceOf(IntegrityError)
      await fs.access(path.join(dav.root, 'bad-hash.bin')).then(
        () => expect.fail('a file landed despite the hash mismatch'),
        () => {},
      )
      const good = await adapter.write('/good-hash.bin', Readable.from([data]), {size: data.length, expect: {sha256: createHash('sha256').update(data).digest('hex')}})
      expect(good.size).to.equal(data.length)
    } finally {
      await adapter.close?.()
    }
  })
})

describe('webdav: backend listing a file', function () {
  it('says "not a directory" (ConflictError) whatever Apache answers for file/', async () => {
    const dav = await apacheDav()
    const adapter = await createWebDavBackend(settings(dav))
    try {
      await adapter.write('/plain.txt', Readable.from([Buffer.from('x')]), {overwrite: true})
      const error = await (async () => {
        for await (const entry of adapter.list('/plain.txt')) expect.fail(`listed ${entry.path}`)
      })().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).to.be.instanceOf(ConflictError)
      expect((error as ConflictError).reason).to.equal('not-directory')
    } finally {
      await adapter.close?.()
    }
  })
})

describe('webdav: backend through the CLI, against Apache mod_dav', function () {
  this.timeout(120_000)
  let dav: ApacheDav
  let dir: string

  before(async () => {
    dav = await apacheDav()
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-webdav-'))
  })

  after(async () => {
    if (dir) await fs.rm(dir, {recursive: true, force: true})
  })

  it('uploads and downloads a 64 MiB file identical', async () => {
    const source = path.join(dir, 'big.bin')
    await makeFile(source, 64 << 20, 64)
    const env = davEnv(dav)
    expect((await runCli(['mkdir', 'webdav:/big'], {env})).code).to.equal(0)
    const up = await runCli(['upload', source, 'webdav:/big/big.bin'], {env})
    expect(up.code, up.stderr).to.equal(0)
    expect((await fs.stat(path.join(dav.root, 'big', 'big.bin'))).size).to.equal(64 << 20)
    const back = path.join(dir, 'back.bin')
    const down = await runCli(['download', 'webdav:/big/big.bin', back], {env})
    expect(down.code, down.stderr).to.equal(0)
    expect(await sha256(back)).to.equal(await sha256(source))
    expect(await sha256(path.join(dav.root, 'big', 'big.bin'))).to.equal(await sha256(source))
  })

  it('copies and moves server-side: the CLI sends COPY and MOVE, no file bytes', async () => {
    const env = davEnv(dav)
    const source = path.join(dir, 'eight.bin')
    await makeFile(source, 8 << 20, 8)
    expect((await runCli(['mkdir', 'webdav:/ss'], {env})).code).to.equal(0)
    expect((await runCli(['upload', source, 'webdav:/ss/a.bin'], {env})).code).to.equal(0)
    const from = await logSize(dav)
    const cp = await runCli(['cp', 'webdav:/ss/a.bin', 'webdav:/ss/b.bin'], {env})
    expect(cp.code, cp.stderr).to.equal(0)
    const mv = await runCli(['mv', 'webdav:/ss/b.bin', 'webdav:/ss/c.bin'], {env})
    expect(mv.code, mv.stderr).to.equal(0)
    const lines = await untilLogged(dav, from, (m) => m === 'COPY' || m === 'MOVE', 2)
    expect(lines.map((l) => l.method)).to.include.members(['COPY', 'MOVE'])
    expect(lines.filter((l) => l.method === 'GET' || l.method === 'PUT'), 'no GET or PUT').to.deep.equal([])
    const bytes = lines.reduce((sum, l) => sum + l.in + l.out, 0)
    expect(bytes, 'bytes through Apache for cp and mv').to.be.below(64 * 1024)
    expect(await sha256(path.join(dav.root, 'ss', 'c.bin'))).to.equal(await sha256(source))
    expect(await sha256(path.join(dav.root, 'ss', 'a.bin'))).to.equal(await sha256(source))
    await fs.access(path.join(dav.root, 'ss', 'b.bin')).then(
      () => expect.fail('b.bin still exists after mv'),
      () => {},
    )
  })

  it('exits 4 for a missing file, 3 for a missing directory, 7 for a wrong password, 5 when nothing listens', async () => {
    const env = davEnv(dav)
    const missingFile = await runCli(['stat', 'webdav:/no-such-file'], {env})
    expect(missingFile.code, missingFile.stderr).to.equal(4)
    expect(missingFile.stderr).to.match(/not found/)
    const missingDir = await runCli(['ls', 'webdav:/no-such-dir'], {env})
    expect(missingDir.code, missingDir.stderr).to.equal(3)
    const wrong = await runCli(['ls', 'webdav:/'], {env: davEnv(dav, {WEBDAV_PASSWORD: 'wrong'})})
    expect(wrong.code, wrong.stderr).to.equal(7)
    expect(wrong.stderr).to.match(/credentials/)
    expect(wrong.stderr.trim().split('\n')).to.have.length(1)
    const port = await freePort()
    const refused = await runCli(['ls', 'webdav:/', '--retries', '0'], {env: davEnv(dav, {WEBDAV_URL: `http://127.0.0.1:${port}/dav`})})
    expect(refused.code, refused.stderr).to.equal(5)
    expect(refused.stderr).to.match(/connection refused/)
    const unset = await runCli(['ls', 'webdav:/'], {env: {}})
    expect(unset.code).to.equal(2)
    expect(unset.stderr).to.match(/WEBDAV_URL/)
  })
})
