// share, unshare, trash, upload --from-url, ranged cat and the OAuth device
// flow against Yandex's request shapes, mocked with nock (the real oclif
// entry point runs in this process). Every interceptor must be used.
import {expect} from 'chai'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import nock from 'nock'

import {FakeYandexDisk} from '../backends/yandex/fake-disk.js'
import type {CliResult} from '../helpers/cli.js'
import {runInProcess} from '../helpers/in-process.js'

const API = 'https://cloud-api.test'
const BASE = '/v1/disk'
const OAUTH = 'https://oauth.test'
const TOKEN = 'y0_test-token'

describe('Yandex-only commands (nock)', function () {
  this.timeout(30_000)
  let work: string
  let env: NodeJS.ProcessEnv
  const cli = (...args: string[]): Promise<CliResult> => runInProcess(args, env)
  const api = () => nock(API, {reqheaders: {authorization: `OAuth ${TOKEN}`}})

  beforeEach(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-yfeat-'))
    env = {HOME: work, DISK_BACKEND: 'yandex', YANDEX_DISK_TOKEN: TOKEN, YANDEX_DISK_API_URL: API + BASE, DISK_RETRY_BASE_MS: '5'}
  })

  afterEach(async () => {
    const pending = nock.pendingMocks()
    nock.cleanAll()
    await fs.rm(work, {recursive: true, force: true})
    expect(pending, 'every expected request was made').to.deep.equal([])
  })

  it('share: PUT /resources/publish, then prints public_url', async () => {
    api().put(`${BASE}/resources/publish`).query({path: 'disk:/photos/cat 1+2.jpg'}).reply(200, {href: `${API}${BASE}/resources?path=disk%3A%2Fphotos`, method: 'GET', templated: false})
    api().get(`${BASE}/resources`).query({path: 'disk:/photos/cat 1+2.jpg', fields: 'public_url'}).reply(200, {public_url: 'https://yadi.sk/i/abc123'})
    const result = await cli('share', '/photos/cat 1+2.jpg')
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.equal('https://yadi.sk/i/abc123\n')
  })

  it('unshare: PUT /resources/unpublish; a missing path is exit 4', async () => {
    api().put(`${BASE}/resources/unpublish`).query({path: 'disk:/a.txt'}).reply(200, {href: `${API}${BASE}/resources?path=disk%3A%2Fa.txt`, method: 'GET'})
    expect((await cli('unshare', '/a.txt')).code).to.equal(0)
    api().put(`${BASE}/resources/unpublish`).query({path: 'disk:/gone.txt'}).reply(404, {error: 'DiskNotFoundError', description: 'Resource not found.'})
    const missing = await cli('unshare', '/gone.txt')
    expect(missing.code).to.equal(4)
    expect(missing.stderr).to.equal('Error: cannot unshare /gone.txt: not found: Resource not found (DiskNotFoundError)\n')
  })

  const trashPage = (items: Array<Record<string, unknown>>, offset: number, total: number) => ({
    name: 'trash',
    path: 'trash:/',
    type: 'dir',
    _embedded: {items, limit: 2, offset, total, path: 'trash:/'},
  })
  const trashItem = (name: string, origin: string, deleted: string, type = 'file') => ({
    name,
    path: `trash:/${name}`,
    origin_path: `disk:${origin}`,
    deleted,
    type,
    size: type === 'file' ? 3 : undefined,
  })

  it('trash ls: GET /trash/resources, paging until total', async () => {
    api()
      .get(`${BASE}/trash/resources`)
      .query({path: 'trash:/', limit: 100, offset: 0})
      .reply(200, trashPage([trashItem('a.txt_1f', '/docs/a.txt', '2026-11-30T10:00:00+00:00'), trashItem('old_2e', '/old', '2026-11-29T10:00:00+00:00', 'dir')], 0, 3))
    api()
      .get(`${BASE}/trash/resources`)
      .query({path: 'trash:/', limit: 100, offset: 2})
      .reply(200, trashPage([trashItem('b.txt_3d', '/b.txt', '2026-11-28T10:00:00+00:00')], 2, 3))
    const result = await cli('trash', 'ls', '--json')
    expect(result.code, result.stderr).to.equal(0)
    const items = JSON.parse(result.stdout)
    expect(items.map((i: {path: string}) => i.path)).to.deep.equal(['/docs/a.txt', '/old', '/b.txt'])
    expect(items[0]).to.deep.include({id: 'trash:/a.txt_1f', type: 'file', size: 3, deleted: '2026-11-30T10:00:00+00:00'})
  })

  it('trash restore: finds the item by original path, PUT /trash/resources/restore, polls the 202 operation; --to moves it', async () => {
    const listing = () =>
      api()
        .get(`${BASE}/trash/resources`)
        .query({path: 'trash:/', limit: 100, offset: 0})
        .reply(200, trashPage([trashItem('a.txt_old', '/docs/a.txt', '2026-11-01T10:00:00+00:00'), trashItem('a.txt_new', '/docs/a.txt', '2026-11-30T10:00:00+00:00')], 0, 2))
    listing()
    api()
      .put(`${BASE}/trash/resources/restore`)
      .query({path: 'trash:/a.txt_new', overwrite: 'false'})
      .reply(202, {href: `${API}${BASE}/operations/op-restore`, method: 'GET', templated: false})
    api().get(`${BASE}/operations/op-restore`).reply(200, {status: 'in-progress'})
    api().get(`${BASE}/operations/op-restore`).reply(200, {status: 'success'})
    const result = await cli('trash', 'restore', '/docs/a.txt', '--json')
    expect(result.code, result.stderr).to.equal(0)
    expect(JSON.parse(result.stdout)).to.deep.equal({restored: '/docs/a.txt', to: '/docs/a.txt'})

    listing()
    api().put(`${BASE}/trash/resources/restore`).query({path: 'trash:/a.txt_old', overwrite: 'false'}).reply(201, {href: `${API}${BASE}/resources?path=disk%3A%2Fdocs%2Fa.txt`, method: 'GET'})
    api().post(`${BASE}/resources/move`).query({from: 'disk:/docs/a.txt', path: 'disk:/restored.txt', overwrite: 'false'}).reply(201, {href: '', method: 'GET'})
    api()
      .get(`${BASE}/resources`)
      .query((q) => q.path === 'disk:/restored.txt')
      .reply(200, {name: 'restored.txt', path: 'disk:/restored.txt', type: 'file', size: 3})
    const moved = await cli('trash', 'restore', 'trash:/a.txt_old', '--to', '/restored.txt')
    expect(moved.code, moved.stderr).to.equal(0)
    expect(moved.stderr).to.equal('restored trash:/a.txt_old to /restored.txt\n')
  })

  it('trash restore of something not in the trash is exit 4', async () => {
    api().get(`${BASE}/trash/resources`).query({path: 'trash:/', limit: 100, offset: 0}).reply(200, trashPage([], 0, 0))
    const result = await cli('trash', 'restore', '/nope.txt')
    expect(result.code).to.equal(4)
    expect(result.stderr).to.equal('Error: cannot restore /nope.txt: not in the trash\n')
  })

  it('trash empty: DELETE /trash/resources (202, polled), and one item by path (204)', async () => {
    api()
      .delete(`${BASE}/trash/resources`)
      .query((q) => Object.keys(q).length === 0)
      .reply(202, {href: `${API}${BASE}/operations?id=op-empty`, method: 'GET'})
    api().get(`${BASE}/operations/op-empty`).reply(200, {status: 'success'})
    const all = await cli('trash', 'empty')
    expect(all.code, all.stderr).to.equal(0)
    expect(all.stderr).to.equal('emptied the trash\n')

    api().get(`${BASE}/trash/resources`).query({path: 'trash:/', limit: 100, offset: 0}).reply(200, trashPage([trashItem('b.txt_3d', '/b.txt', '2026-11-28T10:00:00+00:00')], 0, 1))
    api().delete(`${BASE}/trash/resources`).query({path: 'trash:/b.txt_3d'}).reply(204)
    const one = await cli('trash', 'empty', '/b.txt')
    expect(one.code, one.stderr).to.equal(0)
  })

  it('upload --from-url: POST /resources/upload?url=&path=, polled to success (0) or failed (1)', async () => {
    const url = 'https://example.com/files/big file.iso?x=1&y=2'
    api()
      .post(`${BASE}/resources/upload`)
      .query({url, path: 'disk:/downloads/big.iso'})
      .reply(202, {href: `${API}${BASE}/operations/op-fetch`, method: 'GET', templated: false})
    api().get(`${BASE}/operations/op-fetch`).times(2).reply(200, {status: 'in-progress'})
    api().get(`${BASE}/operations/op-fetch`).reply(200, {status: 'success'})
    const ok = await cli('upload', '--from-url', url, '/downloads/big.iso')
    expect(ok.code, ok.stderr).to.equal(0)

    api().post(`${BASE}/resources/upload`).query({url, path: 'disk:/bad.iso'}).reply(202, {href: `${API}${BASE}/operations/op-bad`, method: 'GET'})
    api().get(`${BASE}/operations/op-bad`).reply(200, {status: 'failed'})
    const failed = await cli('upload', '--from-url', url, '/bad.iso')
    expect(failed.code).to.equal(1)
    expect(failed.stderr).to.match(/^Error: cannot upload https:\/\/example\.com.* to \/bad\.iso: the server reported the operation failed/)
  })

  it('upload --from-url needs exactly one remote argument and an http(s) URL (exit 2)', async () => {
    expect((await cli('upload', '--from-url', 'https://example.com/a', '/a', '/b')).code).to.equal(2)
    expect((await cli('upload', '--from-url', 'ftp://example.com/a', '/a')).code).to.equal(2)
  })

  it('cat --offset/--count sends Range to the download href and writes exactly those bytes', async () => {
    const content = 'abcdefghijklmnopqrstuvwxyz0123456789'
    const stat = () => api().get(`${BASE}/resources`).query((q) => q.path === 'disk:/abc.txt').reply(200, {name: 'abc.txt', path: 'disk:/abc.txt', type: 'file', size: content.length, md5: 'x'})
    const link = () => api().get(`${BASE}/resources/download`).query({path: 'disk:/abc.txt'}).reply(200, {href: 'https://downloader.test/get/abc', method: 'GET'})
    stat()
    link()
    nock('https://downloader.test', {badheaders: ['authorization']})
      .get('/get/abc')
      .matchHeader('range', 'bytes=10-19')
      .reply(206, content.slice(10, 20), {'Content-Range': `bytes 10-19/${content.length}`, 'Content-Length': '10'})
    const ranged = await cli('cat', '/abc.txt', '--offset', '10', '--count', '10')
    expect(ranged.code, ranged.stderr).to.equal(0)
    expect(ranged.stdout).to.equal('klmnopqrst')

    // A host that ignores Range sends it all: the range is cut out here.
    stat()
    link()
    nock('https://downloader.test').get('/get/abc').matchHeader('range', 'bytes=30-').reply(200, content, {'Content-Length': String(content.length)})
    const tail = await cli('cat', '/abc.txt', '--offset', '30')
    expect(tail.stdout).to.equal('456789')

    stat()
    link()
    nock('https://downloader.test').get('/get/abc').reply(200, content, {'Content-Length': String(content.length)})
    expect((await cli('cat', '/abc.txt')).stdout).to.equal(content)
  })

  it('share, trash and --from-url on a backend without them exit 2 saying so', async () => {
    env = {...env, DISK_BACKEND: 'local', DISK_LOCAL_ROOT: path.join(work, 'root')}
    for (const args of [['share', '/a'], ['unshare', '/a'], ['trash', 'ls'], ['trash', 'empty'], ['upload', '--from-url', 'https://e.com/x', '/x']]) {
      const result = await cli(...args)
      expect(result.code, args.join(' ')).to.equal(2)
      expect(result.stderr).to.match(/^Error: the local backend has no (public links|trash|upload from a URL)/)
    }
  })

  describe('login / logout (OAuth device flow)', () => {
    const configFile = () => path.join(work, '.config/disk-client/config.json')
    beforeEach(() => {
      env = {HOME: work, YANDEX_OAUTH_URL: OAUTH, YANDEX_CLIENT_ID: 'client-1', DISK_OAUTH_SECOND_MS: '20'}
    })

    const form = (body: unknown): Record<string, string> =>
      typeof body === 'string' ? Object.fromEntries(new URLSearchParams(body)) : (body as Record<string, string>)

    const deviceCode = () =>
      nock(OAUTH)
        .post('/device/code', (body) => form(body).client_id === 'client-1')
        .reply(200, {device_code: 'dev-42', user_code: 'ABCD-1234', verification_url: 'https://oauth.test/device', interval: 1, expires_in: 300})

    it('prints the code, polls through authorization_pending and slow_down (waiting longer), stores the token 0600; logout removes it', async () => {
      deviceCode()
      const times: number[] = []
      const tokenRequest = (body: unknown) => {
        const f = form(body)
        times.push(Date.now())
        return f.grant_type === 'device_code' && f.code === 'dev-42' && f.client_id === 'client-1' && f.client_secret === 'shh'
      }

      nock(OAUTH).post('/token', tokenRequest).reply(400, {error: 'authorization_pending', error_description: 'User has not yet authorized your application'})
      nock(OAUTH).post('/token', tokenRequest).reply(400, {error: 'slow_down'})
      nock(OAUTH).post('/token', tokenRequest).reply(200, {access_token: 'y0_fresh', token_type: 'bearer', expires_in: 31536000, refresh_token: 'r'})
      const result = await cli('login', '--client-secret', 'shh')
      expect(result.code, result.stderr).to.equal(0)
      expect(result.stderr).to.include('Open https://oauth.test/device and enter the code: ABCD-1234')
      expect(times).to.have.length(3)
      // The interval is 1 server second (20 ms here); after slow_down it is 6 (120 ms).
      expect(times[2] - times[1]).to.be.at.least(110)
      const stat = await fs.stat(configFile())
      expect(stat.mode & 0o777).to.equal(0o600)
      expect(JSON.parse(await fs.readFile(configFile(), 'utf8'))).to.deep.equal({'yandex.token': 'y0_fresh'})

      const out = await cli('logout')
      expect(out.code).to.equal(0)
      expect(JSON.parse(await fs.readFile(configFile(), 'utf8'))).to.deep.equal({})
    })

    for (const [error, status] of [
      ['access_denied', 400],
      ['expired_token', 400],
      ['invalid_grant', 400],
    ] as const) {
      it(`exits 7 on ${error}, storing nothing`, async () => {
        deviceCode()
        nock(OAUTH).post('/token').reply(status, {error})
        const result = await cli('login')
        expect(result.code).to.equal(7)
        expect(result.stderr).to.match(new RegExp(`^Open .*\\n.*\\nError: the login .*\\(${error}\\)`))
        expect(await fs.stat(configFile()).then(() => 'stored', () => 'nothing')).to.equal('nothing')
      })
    }

    it('exits 5 when Yandex OAuth cannot be reached', async () => {
      nock(OAUTH).post('/device/code').times(6).replyWithError({code: 'ECONNREFUSED', message: 'connect ECONNREFUSED'})
      const result = await cli('login')
      expect(result.code).to.equal(5)
      expect(result.stderr).to.match(/^Error: cannot reach Yandex OAuth at https:\/\/oauth\.test\/device\/code/)
    })

    it('exits 2 without a client id', async () => {
      delete env.YANDEX_CLIENT_ID
      const result = await cli('login')
      expect(result.code).to.equal(2)
      expect(result.stderr).to.equal('Error: no OAuth client id; pass --client-id or set YANDEX_CLIENT_ID\n')
    })
  })
})

describe('sync and check with Yandex.Disk (the stateful nock fake)', function () {
  this.timeout(60_000)
  let disk: FakeYandexDisk
  let work: string
  let env: NodeJS.ProcessEnv
  const cli = (...args: string[]): Promise<CliResult> => runInProcess(args, env)

  beforeEach(async () => {
    disk = new FakeYandexDisk({operationPolls: 1}).start()
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-ysync-'))
    env = {HOME: work, YANDEX_DISK_TOKEN: disk.token, YANDEX_DISK_API_URL: disk.apiUrl, DISK_RETRY_BASE_MS: '5'}
    await fs.mkdir(path.join(work, 'src/sub'), {recursive: true})
    await fs.writeFile(path.join(work, 'src/a.txt'), 'alpha')
    await fs.writeFile(path.join(work, 'src/sub/b.txt'), 'bravo')
  })

  afterEach(async () => {
    disk.stop()
    nock.cleanAll()
    await fs.rm(work, {recursive: true, force: true})
  })

  it('a folder to yandex: copies, then with nothing changed makes no upload; check compares by md5/sha256', async () => {
    const src = `file:${path.join(work, 'src')}`
    const first = await cli('sync', src, 'yandex:/dst', '--json')
    expect(first.code, first.stderr).to.equal(0)
    expect(JSON.parse(first.stdout)).to.deep.equal({copied: 2, deleted: 0, unchanged: 0, bytes: 10})
    expect(disk.read('/dst/sub/b.txt')?.toString()).to.equal('bravo')
    const uploadsBefore = disk.requests.filter((r) => r.host === 'upload').length
    expect(uploadsBefore).to.equal(2)

    const second = await cli('sync', src, 'yandex:/dst', '--json')
    expect(JSON.parse(second.stdout)).to.deep.equal({copied: 0, deleted: 0, unchanged: 2, bytes: 0})
    expect(disk.requests.filter((r) => r.host === 'upload').length, 'no upload the second time').to.equal(uploadsBefore)
    expect((await cli('check', src, 'yandex:/dst')).code).to.equal(0)

    // Same size, different content on the Disk: check hashes the local side and finds it.
    disk.addFile('/dst/a.txt', 'ALPHA')
    const check = await cli('check', src, 'yandex:/dst')
    expect(check.code).to.equal(1)
    expect(check.stdout).to.equal('* a.txt\n')
    const checksum = await cli('sync', src, 'yandex:/dst', '--checksum', '--json')
    expect(JSON.parse(checksum.stdout)).to.deep.equal({copied: 1, deleted: 0, unchanged: 1, bytes: 5})
    expect(disk.read('/dst/a.txt')?.toString()).to.equal('alpha')
  })
})
