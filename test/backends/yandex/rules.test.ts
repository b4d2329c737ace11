// The Yandex.Disk rules of DESIGN.md §4, one behaviour per test, against the
// stateful fake (fake-disk.ts) or, where the exact exchange matters, plain
// nock scopes. Nothing here reaches the network.
import {expect} from 'chai'
import {createHash, randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import nock from 'nock'

import type {Entry} from '../../../src/backends/adapter.js'
import {
  AuthError,
  ConflictError,
  ExitCode,
  IntegrityError,
  NotFoundError,
  OperationFailedError,
  TemporaryError,
  TimeoutError,
  UsageError,
} from '../../../src/base/index.js'
import {createYandexBackend, YandexBackend, type YandexBackendOptions} from '../../../src/backends/yandex/index.js'
import {FakeYandexDisk} from './fake-disk.js'

const API = 'https://cloud-api.yandex.net'
const TOKEN = 'fake-oauth-token'

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }

  throw new Error('expected the operation to fail, but it succeeded')
}

async function collect(entries: AsyncIterable<Entry>): Promise<Entry[]> {
  const all: Entry[] = []
  for await (const entry of entries) all.push(entry)
  return all
}

function upload(adapter: YandexBackend, path: string, content: Buffer, overwrite = false): Promise<Entry> {
  return adapter.write(path, Readable.from([content]), {size: content.length, overwrite})
}

const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex')
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex')

/** The Resource JSON of a file, as the API answers a stat. */
function fileResource(path: string, content: string): Record<string, unknown> {
  return {
    name: path.slice(path.lastIndexOf('/') + 1),
    path: `disk:${path}`,
    type: 'file',
    size: Buffer.byteLength(content),
    modified: '2026-01-02T03:04:05+00:00',
    md5: md5(content),
    sha256: sha256(content),
  }
}

describe('Yandex.Disk backend rules', function () {
  this.timeout(20_000)
  let fake: FakeYandexDisk | undefined

  function adapterFor(options: YandexBackendOptions = {}): YandexBackend {
    return new YandexBackend({
      token: TOKEN,
      apiUrl: fake?.apiUrl ?? `${API}/v1/disk`,
      retries: 3,
      retryBaseMs: 1,
      operationPollMs: 5,
      ...options,
    })
  }

  beforeEach(() => {
    fake = new FakeYandexDisk({token: TOKEN}).start()
  })

  afterEach(() => {
    const current = fake
    fake = undefined
    current?.stop()
    nock.cleanAll()
    current?.done()
  })

  describe('listing', () => {
    it('lists a directory of 250 entries across pages of 100, to the last one', async () => {
      fake!.addDir('/many')
      for (let i = 0; i < 250; i++) fake!.addFile(`/many/f${String(i).padStart(3, '0')}.txt`, `file ${i}`)
      const entries = await collect(adapterFor().list('/many'))
      expect(entries).to.have.length(250)
      expect(entries[0]).to.deep.include({name: 'f000.txt', path: '/many/f000.txt', type: 'file', size: 6})
      expect(entries[249].path).to.equal('/many/f249.txt')
      expect(new Set(entries.map((e) => e.path)).size).to.equal(250)
      const pages = fake!.requests.filter((r) => r.uri.startsWith('/v1/disk/resources?'))
      expect(pages.map((r) => new URL(r.uri, API).searchParams.get('offset'))).to.deep.equal(['0', '100', '200'])
      expect(pages.every((r) => new URL(r.uri, API).searchParams.get('limit') === '100')).to.equal(true)
    })

    it('lists a folder right after its stat from the page the stat brought: one request for both, the rest of the pages as usual', async () => {
      fake!.addDir('/many')
      for (let i = 0; i < 150; i++) fake!.addFile(`/many/f${String(i).padStart(3, '0')}.txt`, `file ${i}`)
      const adapter = adapterFor()
      expect(await adapter.stat('/many')).to.deep.include({path: '/many', type: 'dir', size: null})
      const entries = await collect(adapter.list('/many'))
      expect(entries.map((e) => e.path)).to.deep.equal(Array.from({length: 150}, (_, i) => `/many/f${String(i).padStart(3, '0')}.txt`))
      const pages = fake!.requests.filter((r) => r.uri.startsWith('/v1/disk/resources?'))
      expect(pages.map((r) => new URL(r.uri, API).searchParams.get('offset'))).to.deep.equal([null, '100'])
      // The page serves one listing only: the next one asks again.
      await collect(adapter.list('/many'))
      expect(fake!.requests.filter((r) => r.uri.startsWith('/v1/disk/resources?'))).to.have.length(4)
    })

    it('does not list a folder from its stat\'s page once something changed through the backend in between', async () => {
      fake!.addDir('/box')
      fake!.addFile('/box/a.txt', 'a')
      const adapter = adapterFor()
      await adapter.stat('/box')
      await adapter.mkdir('/box/new')
      const names = (await collect(adapter.list('/box'))).map((e) => e.name)
      expect(names).to.have.members(['a.txt', 'new'])
    })

    it('reports a file given to list as ConflictError(not-directory)', async () => {
      fake!.addFile('/plain.txt', 'x')
      const error = await rejection(collect(adapterFor().list('/plain.txt')))
      expect(error).to.be.instanceOf(ConflictError)
      expect((error as ConflictError).reason).to.equal('not-directory')
    })

    it('shows paths as /a/b and the root as "/" with an empty name', async () => {
      fake!.addDir('/a').addFile('/a/b', 'bb')
      expect(await adapterFor().stat('/a/b')).to.deep.include({name: 'b', path: '/a/b', type: 'file', size: 2})
      expect(await adapterFor().stat('/')).to.deep.include({name: '', path: '/', type: 'dir', size: null})
    })
  })

  describe('upload and download', () => {
    it('uploads through the href the API returns, streaming with Content-Length, and checks md5 and sha256', async () => {
      const content = randomBytes(100_000)
      const entry = await upload(adapterFor(), '/up.bin', content)
      expect(entry).to.deep.include({path: '/up.bin', type: 'file', size: content.length, md5: md5(content), sha256: sha256(content)})
      expect(fake!.read('/up.bin')?.equals(content)).to.equal(true)
      const put = fake!.requests.filter((r) => r.host === 'upload')
      expect(put).to.have.length(1)
      expect(put[0]).to.deep.include({method: 'PUT', authorization: undefined})
      const link = fake!.requests.find((r) => r.uri.startsWith('/v1/disk/resources/upload?'))!
      expect(link.uri).to.include('overwrite=false')
    })

    it('rejects an upload the Disk stored with another hash with IntegrityError, and removes the bad copy', async () => {
      fake!.corruptNextUpload = true
      const error = await rejection(upload(adapterFor(), '/bad.bin', Buffer.from('precious content')))
      expect(error).to.be.instanceOf(IntegrityError)
      expect(error.message).to.match(/mismatch/)
      expect((error as IntegrityError).exitCode).to.equal(ExitCode.OTHER)
      expect(fake!.tree.has('/bad.bin')).to.equal(false)
    })

    it('rejects an upload whose content differs from the expected hash with IntegrityError', async () => {
      const adapter = adapterFor()
      const content = Buffer.from('what was read')
      const error = await rejection(
        adapter.write('/x.txt', Readable.from([content]), {size: content.length, expect: {sha256: sha256('something else')}}),
      )
      expect(error).to.be.instanceOf(IntegrityError)
      expect(fake!.tree.has('/x.txt')).to.equal(false)
    })

    it('maps a failing upload host (plain text 503) to TemporaryError, and asks for a new link next time', async () => {
      fake!.inject({host: 'upload', status: 503, body: 'Service Unavailable'})
      const adapter = adapterFor()
      const error = await rejection(upload(adapter, '/retry.txt', Buffer.from('again')))
      expect(error).to.be.instanceOf(TemporaryError)
      expect(error.message).to.include('HTTP 503')
      await upload(adapter, '/retry.txt', Buffer.from('again'))
      const hrefs = fake!.requests.filter((r) => r.host === 'upload').map((r) => r.uri)
      expect(hrefs).to.have.length(2)
      expect(hrefs[0]).to.not.equal(hrefs[1])
      expect(fake!.read('/retry.txt')?.toString()).to.equal('again')
    })

    it('rejects with the source stream\'s own error when it fails midway, storing nothing', async () => {
      const failing = new TemporaryError('cannot read /elsewhere: network error: ECONNRESET')
      async function* body() {
        yield Buffer.alloc(1000, 1)
        throw failing
      }

      const error = await rejection(adapterFor().write('/half.bin', Readable.from(body()), {size: 2000}))
      expect(error).to.equal(failing)
      expect(fake!.tree.has('/half.bin')).to.equal(false)
    })

    it('maps a 507 from the upload host to ConflictError no-space (exit 6)', async () => {
      fake!.totalSpace = 10
      const error = await rejection(upload(adapterFor(), '/big.bin', Buffer.alloc(100)))
      expect(error).to.be.instanceOf(ConflictError)
      expect((error as ConflictError).reason).to.equal('no-space')
      expect((error as ConflictError).exitCode).to.equal(ExitCode.CONFLICT)
    })

    it('downloads through the fake: download host redirects to the storage host', async () => {
      const content = randomBytes(50_000)
      fake!.addFile('/down.bin', content)
      const body = await buffer(await adapterFor().openRead('/down.bin'))
      expect(body.equals(content)).to.equal(true)
      expect(fake!.requests.filter((r) => r.host === 'download')).to.have.length(1)
      expect(fake!.requests.filter((r) => r.host === 'storage')).to.have.length(1)
    })

    it('reports a download that ends short of its Content-Length as TemporaryError', async () => {
      fake!.stop()
      const scope = nock(API)
        .get('/v1/disk/resources')
        .query(true)
        .reply(200, fileResource('/cut.bin', 'x'.repeat(1000)))
        .get('/v1/disk/resources/download')
        .query(true)
        .reply(200, {href: 'https://downloader.disk.yandex.ru/disk/cut', method: 'GET', templated: false})
      const storage = nock('https://downloader.disk.yandex.ru')
        .get('/disk/cut')
        .reply(200, 'x'.repeat(500), {'Content-Length': '1000'})
      const stream = await adapterFor({apiUrl: `${API}/v1/disk`}).openRead('/cut.bin')
      const error = await rejection(buffer(stream))
      expect(error).to.be.instanceOf(TemporaryError)
      expect(error.message).to.match(/^cannot read \/cut\.bin: .*(aborted|500 of 1000 bytes)/)
      scope.done()
      storage.done()
    })
  })

  describe('uploads answered 202 (accepted, still being processed)', () => {
    it('polls the operation named by the link through two in-progress answers to success, then stats and verifies the hash', async () => {
      fake!.stop()
      const content = 'processed later'
      const order: string[] = []
      const api = nock(API)
        .get('/v1/disk/resources/upload')
        .query({path: 'disk:/late.txt', overwrite: 'false'})
        .reply(200, {operation_id: 'op-42', href: 'https://uploader1j.disk.yandex.net/upload-target/42', method: 'PUT', templated: false})
        .get('/v1/disk/operations/op-42')
        .times(2)
        .reply(() => (order.push('in-progress'), [200, {status: 'in-progress'}]))
        .get('/v1/disk/operations/op-42')
        .reply(() => (order.push('success'), [200, {status: 'success'}]))
        .get('/v1/disk/resources')
        .query((query) => query.path === 'disk:/late.txt')
        .reply(() => (order.push('stat'), [200, fileResource('/late.txt', content)]))
      const uploader = nock('https://uploader1j.disk.yandex.net')
        .put('/upload-target/42', content)
        .reply(() => (order.push('put'), [202, 'Accepted']))
      const entry = await upload(adapterFor({apiUrl: `${API}/v1/disk`}), '/late.txt', Buffer.from(content))
      expect(entry).to.deep.include({path: '/late.txt', size: content.length, md5: md5(content), sha256: sha256(content)})
      expect(order).to.deep.equal(['put', 'in-progress', 'in-progress', 'success', 'stat'])
      api.done()
      uploader.done()
    })

    it('waits for the stand-in\'s operation before the stat, which would not find the file earlier', async () => {
      fake!.asyncUploads = true
      fake!.operationPolls = 2
      const content = randomBytes(30_000)
      const entry = await upload(adapterFor(), '/big.bin', content)
      expect(entry).to.deep.include({path: '/big.bin', size: content.length, md5: md5(content)})
      expect(fake!.read('/big.bin')?.equals(content)).to.equal(true)
      const polls = fake!.requests.filter((r) => r.uri.startsWith('/v1/disk/operations/'))
      expect(polls).to.have.length(3)
    })

    it('reports an upload operation that ends failed as OperationFailedError (exit 1), storing nothing', async () => {
      fake!.asyncUploads = true
      fake!.failOperations = true
      const error = await rejection(upload(adapterFor(), '/lost.bin', Buffer.from('never stored')))
      expect(error).to.be.instanceOf(OperationFailedError)
      expect((error as OperationFailedError).exitCode).to.equal(ExitCode.OTHER)
      expect(error.message).to.match(/^cannot write \/lost\.bin: .*failed/)
      expect(fake!.tree.has('/lost.bin')).to.equal(false)
    })

    it('gives up on an upload operation that never ends with TimeoutError (exit 5) after the operation timeout', async () => {
      fake!.asyncUploads = true
      fake!.operationPolls = 1_000_000
      const started = Date.now()
      const error = await rejection(upload(adapterFor({operationTimeoutMs: 80}), '/stuck.bin', Buffer.from('stuck')))
      expect(error).to.be.instanceOf(TimeoutError)
      expect((error as TimeoutError).exitCode).to.equal(ExitCode.TEMPORARY)
      expect(error.message).to.match(/^cannot write \/stuck\.bin: .*still in progress/)
      expect(Date.now() - started).to.be.below(5000)
      expect(fake!.requests.filter((r) => r.uri.startsWith('/v1/disk/operations/')).length).to.be.at.least(2)
    })
  })

  describe('the token', () => {
    it('follows a redirected download (302 to another host) without ever sending the token there', async () => {
      fake!.stop()
      const api = nock(API, {reqheaders: {authorization: `OAuth ${TOKEN}`}})
        .get('/v1/disk/resources')
        .query({path: 'disk:/doc.txt', fields: /.*/})
        .reply(200, fileResource('/doc.txt', 'the document'))
        .get('/v1/disk/resources/download')
        .query({path: 'disk:/doc.txt'})
        .reply(200, {href: 'https://downloader.disk.yandex.ru/disk/abc?uid=1', method: 'GET', templated: false})
      const downloader = nock('https://downloader.disk.yandex.ru', {badheaders: ['authorization']})
        .get('/disk/abc')
        .query({uid: '1'})
        .reply(302, '', {Location: 'https://s77vla.storage.yandex.net/rdisk/abc'})
      const storage = nock('https://s77vla.storage.yandex.net', {badheaders: ['authorization']})
        .get('/rdisk/abc')
        .reply(200, 'the document', {'Content-Length': '12'})
      const body = await buffer(await adapterFor({apiUrl: `${API}/v1/disk`}).openRead('/doc.txt'))
      expect(body.toString()).to.equal('the document')
      api.done()
      downloader.done()
      storage.done()
    })

    it('streams an upload to the href without the token', async () => {
      fake!.stop()
      const content = 'upload me'
      const api = nock(API, {reqheaders: {authorization: `OAuth ${TOKEN}`}})
        .get('/v1/disk/resources/upload')
        .query({path: 'disk:/u.txt', overwrite: 'true'})
        .reply(200, {href: 'https://uploader9k.disk.yandex.net:443/upload-target/xyz', method: 'PUT', templated: false})
        .get('/v1/disk/resources')
        .query(true)
        .reply(200, fileResource('/u.txt', content))
      const uploader = nock('https://uploader9k.disk.yandex.net:443', {
        badheaders: ['authorization'],
        reqheaders: {'content-length': String(content.length)},
      })
        .put('/upload-target/xyz', content)
        .reply(201, 'Created')
      const entry = await upload(adapterFor({apiUrl: `${API}/v1/disk`}), '/u.txt', Buffer.from(content), true)
      expect(entry.md5).to.equal(md5(content))
      api.done()
      uploader.done()
    })

    it('never sent the token anywhere but the API in a whole session against the fake', async () => {
      const adapter = adapterFor()
      await adapter.mkdir('/s')
      await upload(adapter, '/s/a.txt', Buffer.from('alpha'))
      await buffer(await adapter.openRead('/s/a.txt'))
      await adapter.copy('/s', '/t')
      expect(fake!.tokenLeaks).to.deep.equal([])
      const hosts = new Set(fake!.requests.map((r) => r.host))
      expect([...hosts].sort()).to.deep.equal(['api', 'download', 'storage', 'upload'])
      expect(fake!.requests.filter((r) => r.host === 'api').every((r) => r.authorization === `OAuth ${TOKEN}`)).to.equal(true)
    })

    it('rejects a missing token with AuthError (exit 7) naming YANDEX_DISK_TOKEN and the config command', async () => {
      const error = await rejection(
        createYandexBackend({retries: 0, retryBaseMs: 1, yandexApiUrl: `${API}/v1/disk`, localRoot: '', dataDir: '', log() {}}),
      )
      expect(error).to.be.instanceOf(AuthError)
      expect((error as AuthError).exitCode).to.equal(ExitCode.FATAL)
      expect((error as AuthError).line).to.include('YANDEX_DISK_TOKEN').and.include('disk-client config set yandex.token')
    })

    it('maps 401 to AuthError (exit 7) and does not retry it', async () => {
      const adapter = adapterFor({token: 'wrong-token', retries: 3})
      const error = await rejection(adapter.stat('/'))
      expect(error).to.be.instanceOf(AuthError)
      expect((error as AuthError).exitCode).to.equal(ExitCode.FATAL)
      expect((error as AuthError).line).to.include('(UnauthorizedError)').and.include('YANDEX_DISK_TOKEN')
      expect(fake!.requests).to.have.length(1)
    })
  })

  describe('paths', () => {
    it('sends path=disk:/… with +, spaces and non-ASCII letters percent-encoded', async () => {
      fake!.addFile('/a b+c дом.txt', 'odd')
      const entry = await adapterFor().stat('/a b+c дом.txt')
      expect(entry.name).to.equal('a b+c дом.txt')
      const uri = fake!.requests[0].uri
      expect(uri).to.include(`path=disk%3A%2Fa%20b%2Bc%20${encodeURIComponent('дом')}.txt`)
      expect(uri).to.not.match(/path=[^&]*\+/)
    })
  })

  describe('copy, move and delete', () => {
    beforeEach(() => {
      fake!.operationPolls = 2
      fake!.addDir('/src').addFile('/src/a.txt', 'alpha').addDir('/src/inner').addFile('/src/inner/b.txt', 'beta')
    })

    const operationsPolled = () => fake!.requests.filter((r) => r.uri.startsWith('/v1/disk/operations/')).length

    it('copies a directory answered 202 and polls the operation to success', async () => {
      const entry = await adapterFor().copy('/src', '/copy')
      expect(entry).to.deep.include({path: '/copy', type: 'dir'})
      expect(fake!.read('/copy/inner/b.txt')?.toString()).to.equal('beta')
      expect(fake!.read('/src/inner/b.txt')?.toString()).to.equal('beta')
      expect(operationsPolled()).to.equal(3)
    })

    it('moves a directory answered 202 and polls the operation to success', async () => {
      const entry = await adapterFor().move('/src', '/moved')
      expect(entry).to.deep.include({path: '/moved', type: 'dir'})
      expect(fake!.read('/moved/a.txt')?.toString()).to.equal('alpha')
      expect(fake!.tree.has('/src')).to.equal(false)
      expect(operationsPolled()).to.equal(3)
    })

    it('renames a file answered 201 directly, without polling', async () => {
      await adapterFor().move('/src/a.txt', '/src/renamed.txt')
      expect(fake!.read('/src/renamed.txt')?.toString()).to.equal('alpha')
      expect(operationsPolled()).to.equal(0)
    })

    it('reports an operation that ends failed as OperationFailedError (exit 1) and leaves the source intact', async () => {
      fake!.failOperations = true
      const error = await rejection(adapterFor().move('/src', '/moved'))
      expect(error).to.be.instanceOf(OperationFailedError)
      expect((error as OperationFailedError).exitCode).to.equal(ExitCode.OTHER)
      expect(error.message).to.include('cannot move /src to /moved').and.include('failed')
      expect(fake!.read('/src/inner/b.txt')?.toString()).to.equal('beta')
      expect(fake!.tree.has('/moved')).to.equal(false)
    })

    it('gives up on an operation still in progress after the timeout with TimeoutError (exit 5)', async () => {
      fake!.operationPolls = 1000
      const error = await rejection(adapterFor({operationTimeoutMs: 60}).copy('/src', '/copy'))
      expect(error).to.be.instanceOf(TimeoutError)
      expect((error as TimeoutError).exitCode).to.equal(ExitCode.TEMPORARY)
    })

    it('deletes a directory to the trash via 202 + polling, and a file permanently with the option', async () => {
      const adapter = adapterFor()
      await adapter.remove('/src/a.txt', {permanently: true})
      expect(fake!.trashSize).to.equal(0)
      await adapter.remove('/src', {recursive: true})
      expect(fake!.trashSize).to.equal(4)
      expect([...fake!.tree.keys()]).to.deep.equal(['/'])
      const deletes = fake!.requests.filter((r) => r.method === 'DELETE').map((r) => new URL(r.uri, API).searchParams.get('permanently'))
      expect(deletes).to.deep.equal(['true', 'false'])
      expect(operationsPolled()).to.equal(3)
    })

    it('refuses to remove a directory without recursive: UsageError "is a directory; use -r"', async () => {
      const error = await rejection(adapterFor().remove('/src'))
      expect(error).to.be.instanceOf(UsageError)
      expect(error.message).to.include('is a directory; use -r')
      expect(fake!.requests.some((r) => r.method === 'DELETE')).to.equal(false)
    })

    it('maps 409 DiskResourceAlreadyExistsError to ConflictError (exit 6) with the hint to use --overwrite', async () => {
      fake!.addFile('/exists.txt', 'x')
      const error = await rejection(adapterFor().copy('/src/a.txt', '/exists.txt'))
      expect(error).to.be.instanceOf(ConflictError)
      expect((error as ConflictError).exitCode).to.equal(ExitCode.CONFLICT)
      expect((error as ConflictError).line).to.match(
        /^cannot copy \/src\/a\.txt to \/exists\.txt: destination already exists: .* \(DiskResourceAlreadyExistsError\); use --overwrite$/,
      )
    })
  })

  describe('errors and retries', () => {
    it('maps a missing directory to NotFoundError dir (exit 3) and a missing file to NotFoundError file (exit 4)', async () => {
      const adapter = adapterFor()
      const dir = (await rejection(collect(adapter.list('/nope')))) as NotFoundError
      expect(dir).to.be.instanceOf(NotFoundError)
      expect(dir.exitCode).to.equal(ExitCode.DIR_NOT_FOUND)
      const parent = (await rejection(adapter.mkdir('/nope/child'))) as NotFoundError
      expect(parent.exitCode).to.equal(ExitCode.DIR_NOT_FOUND)
      expect(parent.line).to.include('(DiskPathDoesntExistsError)')
      const file = (await rejection(adapter.stat('/nope.txt'))) as NotFoundError
      expect(file).to.be.instanceOf(NotFoundError)
      expect(file.exitCode).to.equal(ExitCode.FILE_NOT_FOUND)
      expect(file.line).to.equal('cannot stat /nope.txt: not found: Resource not found (DiskNotFoundError)')
    })

    it('maps mkdir of an existing directory (409 DiskPathPointsToExistentDirectoryError) to ConflictError', async () => {
      fake!.addDir('/here')
      const error = await rejection(adapterFor().mkdir('/here'))
      expect(error).to.be.instanceOf(ConflictError)
      expect((error as ConflictError).backendCode).to.equal('DiskPathPointsToExistentDirectoryError')
    })

    it('maps any 507 from the API to ConflictError no-space and does not retry it', async () => {
      fake!.addFile('/a.txt', 'a')
      fake!.inject({path: '/resources/copy', status: 507, body: {error: 'DiskQuotaExceededError', description: 'Disk quota exceeded'}})
      const error = await rejection(adapterFor().copy('/a.txt', '/b.txt'))
      expect(error).to.be.instanceOf(ConflictError)
      expect((error as ConflictError).reason).to.equal('no-space')
      expect(fake!.requests.filter((r) => r.method === 'POST')).to.have.length(1)
    })

    it('retries a 429 and honours Retry-After: 1 before succeeding', async () => {
      fake!.addFile('/slow.txt', 'z')
      fake!.inject({path: '/resources', method: 'GET', status: 429, body: {error: 'TooManyRequestsError'}, headers: {'Retry-After': '1'}})
      const started = Date.now()
      const entry = await adapterFor({retryBaseMs: 1}).stat('/slow.txt')
      expect(entry.size).to.equal(1)
      expect(Date.now() - started).to.be.at.least(950)
      expect(fake!.requests).to.have.length(2)
    })

    it('retries a 503 that persists, then fails with TemporaryError (exit 5)', async () => {
      fake!.inject({status: 503, body: 'Service Unavailable', times: 3})
      const error = await rejection(adapterFor({retries: 2}).stat('/'))
      expect(error).to.be.instanceOf(TemporaryError)
      expect((error as TemporaryError).exitCode).to.equal(ExitCode.TEMPORARY)
      expect(fake!.requests).to.have.length(3)
    })

    it('retries 423, 500, 502 and 504 and a reset connection, then succeeds', async () => {
      fake!.stop()
      const scope = nock(API)
        .get('/v1/disk/')
        .reply(423, {error: 'DiskResourceLockedError', description: 'Resource is locked'})
        .get('/v1/disk/')
        .reply(500)
        .get('/v1/disk/')
        .reply(502)
        .get('/v1/disk/')
        .reply(504)
        .get('/v1/disk/')
        .replyWithError(Object.assign(new Error('socket hang up'), {code: 'ECONNRESET'}))
        .get('/v1/disk/')
        .reply(200, {total_space: 100, used_space: 30, trash_size: 5})
      const about = await adapterFor({apiUrl: `${API}/v1/disk`, retries: 5}).about()
      expect(about).to.deep.equal({total: 100, used: 30, free: 70, trash: 5})
      scope.done()
    })

    it('reports quota from GET / as {total, used, free, trash}', async () => {
      fake!.totalSpace = 1000
      fake!.addFile('/q.bin', Buffer.alloc(300))
      await adapterFor().remove('/q.bin')
      fake!.addFile('/r.bin', Buffer.alloc(100))
      expect(await adapterFor().about()).to.deep.equal({total: 1000, used: 400, free: 600, trash: 300})
    })

    it('never retries a 4xx that is the caller’s fault', async () => {
      fake!.stop()
      const scope = nock(API)
        .get('/v1/disk/resources')
        .query(true)
        .reply(400, {error: 'FieldValidationError', description: 'Error validating field "path"'})
      const error = await rejection(adapterFor({apiUrl: `${API}/v1/disk`, retries: 5}).stat('/x'))
      expect(error).to.be.instanceOf(UsageError)
      expect((error as UsageError).backendCode).to.equal('FieldValidationError')
      scope.done()
    })
  })
})
