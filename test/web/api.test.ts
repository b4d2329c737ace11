import {expect} from 'chai'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'

import {runCli} from '../helpers/cli.js'
import {peakRss, seededChunks, startWeb, tempDirs, type RawResponse, type WebProcess} from './helpers.js'

function expectErrorShape(response: RawResponse, status: number, exitCode: number): void {
  expect(response.status, response.text).to.equal(status)
  const body = JSON.parse(response.text) as {error: {code: string; message: string; exitCode: number}}
  expect(body.error).to.have.keys(['code', 'message', 'exitCode'])
  expect(body.error.exitCode).to.equal(exitCode)
  expect(body.error.message).to.be.a('string').and.not.match(/\n/)
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

describe('web console: HTTP API and security', function () {
  this.timeout(120_000)
  let dirs: Awaited<ReturnType<typeof tempDirs>>
  let env: NodeJS.ProcessEnv
  let web: WebProcess

  before(async () => {
    dirs = await tempDirs()
    env = {DISK_BACKEND: 'local', DISK_LOCAL_ROOT: dirs.localRoot, DISK_DATA_DIR: dirs.dataDir, HOME: dirs.work}
    await fs.mkdir(path.join(dirs.localRoot, 'docs'))
    await fs.writeFile(path.join(dirs.localRoot, 'docs', 'a.txt'), 'alpha\n')
    await fs.writeFile(path.join(dirs.localRoot, 'docs', 'Отчёт 2026.txt'), 'отчёт\n')
    await fs.writeFile(path.join(dirs.work, 'secret.txt'), 'outside the root\n')
    web = await startWeb(env)
  })

  after(async () => {
    await web?.stop()
    await dirs?.remove()
  })

  it('prints the console URL with a token on its first line, bound to 127.0.0.1', () => {
    expect(web.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{20,}$/)
  })

  it('answers 401 without the cookie, and to a wrong token', async () => {
    expectErrorShape(await web.request('GET', '/api/ls?path=/'), 401, 7)
    expect((await web.request('GET', '/')).status).to.equal(401)
    expect((await web.request('GET', '/static/app.js')).status).to.equal(401)
    expect((await web.request('GET', '/?token=wrong')).status).to.equal(401)
    expect((await web.request('GET', '/api/ls?path=/', {headers: {Cookie: web.cookie + 'x'}})).status).to.equal(401)
  })

  it('exchanges the token for an HttpOnly SameSite=Strict cookie and redirects to strip the token', async () => {
    const url = new URL(web.url)
    const response = await web.request('GET', url.pathname + url.search)
    expect(response.status).to.equal(303)
    expect(response.headers.location).to.equal('/')
    const cookie = response.headers['set-cookie']?.[0] ?? ''
    expect(cookie).to.match(/HttpOnly/).and.match(/SameSite=Strict/)
    expect(cookie).not.to.include(url.searchParams.get('token') ?? '-')
    expect(web.cookie).to.match(/^disk_client_\d+=.+/)
    // The token stays valid for the life of the process.
    expect((await web.request('GET', url.pathname + url.search)).status).to.equal(303)
  })

  it('answers 421 to a Host header other than the bound address', async () => {
    for (const host of ['evil.example:80', `localhost:${web.port}`, `127.0.0.1:${web.port + 1}`]) {
      const response = await web.request('GET', '/api/ls?path=/', {headers: {Host: host, Cookie: web.cookie}})
      expectErrorShape(response, 421, 2)
    }
  })

  it('answers 403 to a state-changing request without the X-CSRF-Token of the page', async () => {
    expect(web.csrf).to.have.length.above(20)
    const body = JSON.stringify({path: '/made'})
    const missing = await web.request('POST', '/api/mkdir', {headers: {Cookie: web.cookie, 'Content-Type': 'application/json'}, body})
    expectErrorShape(missing, 403, 7)
    const wrong = await web.request('DELETE', '/api/file?path=/docs/a.txt', {headers: {Cookie: web.cookie, 'X-CSRF-Token': 'nope'}})
    expectErrorShape(wrong, 403, 7)
    const put = await web.request('PUT', '/api/file?path=/x.txt', {headers: {Cookie: web.cookie}, body: 'x'})
    expect(put.status).to.equal(403)
    await fs.access(path.join(dirs.localRoot, 'docs', 'a.txt'))
    for (const name of ['made', 'x.txt']) {
      expect(await fs.stat(path.join(dirs.localRoot, name)).catch(() => null), name).to.equal(null)
    }
    const ok = await web.authed('POST', '/api/mkdir', {headers: {'Content-Type': 'application/json'}, body})
    expect(ok.status, ok.text).to.equal(201)
    expect((await fs.stat(path.join(dirs.localRoot, 'made'))).isDirectory()).to.equal(true)
  })

  it("sends Content-Security-Policy: default-src 'self', and pages have no inline script or handlers", async () => {
    for (const page of ['/', '/upload?path=/docs', '/download?path=/docs/a.txt', '/api/ls?path=/']) {
      const response = await web.authed('GET', page)
      expect(response.status, page).to.equal(200)
      expect(response.headers['content-security-policy'], page).to.equal("default-src 'self'")
      if (!page.startsWith('/api/')) {
        expect(response.text).to.match(/<meta name="csrf-token" content="[^"]+">/)
        for (const tag of response.text.match(/<script\b[^>]*>/g) ?? []) expect(tag).to.match(/ src="\/static\//)
        expect(response.text).not.to.match(/<script\b[^>]*>[^<]+<\/script>/)
        expect(response.text).not.to.match(/\son[a-z]+\s*=/i)
        expect(response.text).not.to.match(/\sstyle\s*=/i)
      }
    }
  })

  it('GET /api/ls returns exactly what ls --json prints', async () => {
    for (const dir of ['/', '/docs', 'local:/docs']) {
      const api = await web.authed('GET', `/api/ls?path=${encodeURIComponent(dir)}`)
      const cli = await runCli(['ls', dir, '--json'], {env})
      expect(cli.code, cli.stderr).to.equal(0)
      expect(JSON.parse(api.text)).to.deep.equal(JSON.parse(cli.stdout))
    }
  })

  it('refuses path traversal on the local backend, encoded or not, with a 4xx', async () => {
    const attempts = [
      '/api/ls?path=/..',
      '/api/ls?path=%2F..',
      '/api/ls?path=%2F%2e%2e%2F',
      '/api/ls?path=local:/docs/../..',
      '/api/ls?path=/docs/..%2f..%2f',
      '/api/file?path=/../work/secret.txt',
      '/api/file?path=%2F%2E%2E%2Fwork%2Fsecret.txt',
      '/api/file?path=/docs/..%5c..%5cwork%5csecret.txt',
      '/download?path=/../work/secret.txt',
      '/static/../../package.json',
      '/static/%2e%2e/%2e%2e/package.json',
    ]
    for (const attempt of attempts) {
      const response = await web.authed('GET', attempt)
      expect(response.status, attempt).to.be.within(400, 499)
      expect(response.text, attempt).not.to.include('outside the root')
      expect(response.text, attempt).not.to.include('"name": "disk-client"')
    }
    const write = await web.authed('PUT', '/api/file?path=/../escaped.txt', {body: 'x'})
    expectErrorShape(write, 400, 2)
    const mkdir = await web.authed('POST', '/api/mkdir', {body: JSON.stringify({path: '/%2e%2e/../up'})})
    expect(mkdir.status).to.be.within(400, 499)
    const move = await web.authed('POST', '/api/mv', {body: JSON.stringify({src: '/docs/a.txt', dst: '/../a.txt'})})
    expectErrorShape(move, 400, 2)
    expect(await fs.readdir(path.dirname(dirs.localRoot))).to.have.members(['local', 'cluster', 'work'])
  })

  it("reports errors in the CLI's shape with fitting statuses", async () => {
    expectErrorShape(await web.authed('GET', '/api/ls?path=/missing'), 404, 3)
    expectErrorShape(await web.authed('GET', '/api/file?path=/docs/missing.txt'), 404, 4)
    expectErrorShape(await web.authed('POST', '/api/mkdir', {body: JSON.stringify({path: '/docs'})}), 409, 6)
    expectErrorShape(await web.authed('DELETE', '/api/file?path=/docs'), 400, 2)
    expectErrorShape(await web.authed('POST', '/api/cp', {body: 'not json'}), 400, 2)
    expectErrorShape(await web.authed('POST', '/api/cp', {body: JSON.stringify({src: '/docs/a.txt', dst: '/docs/a.txt'})}), 400, 2)
    const conflict = await web.authed('PUT', '/api/file?path=/docs/a.txt', {body: 'replacement'})
    expectErrorShape(conflict, 409, 6)
    expect(await fs.readFile(path.join(dirs.localRoot, 'docs', 'a.txt'), 'utf8')).to.equal('alpha\n')
    expectErrorShape(await web.authed('GET', '/api/ls?path=nowhere:/'), 400, 2)
    expect((await web.authed('PATCH', '/api/ls?path=/')).status).to.equal(405)
    expect((await web.authed('GET', '/api/nothing')).status).to.equal(404)
  })

  it('shows a failure on the page itself, with the status the API would give', async () => {
    const page = await web.authed('GET', '/?path=/missing')
    expect(page.status).to.equal(404)
    expect(page.headers['content-type']).to.match(/^text\/html/)
    expect(page.text).to.match(/<p class="error" data-code="ENOTFOUND_DIR">cannot list \/missing: [^<]+<\/p>/)
  })

  it('downloads a file with an RFC 5987 filename* for a non-ASCII name', async () => {
    const response = await web.authed('GET', `/api/file?path=${encodeURIComponent('/docs/Отчёт 2026.txt')}`)
    expect(response.status).to.equal(200)
    expect(response.text).to.equal('отчёт\n')
    const disposition = String(response.headers['content-disposition'])
    expect(disposition).to.match(/^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/)
    expect(decodeURIComponent(disposition.split("UTF-8''")[1])).to.equal('Отчёт 2026.txt')
  })

  it('mv and cp through the API do what the CLI does, and the CLI sees the result', async () => {
    const cp = await web.authed('POST', '/api/cp', {body: JSON.stringify({src: '/docs', dst: '/copy'})})
    expect(cp.status, cp.text).to.equal(200)
    expect(JSON.parse(cp.text)).to.include({source: '/docs', destination: '/copy', type: 'dir'})
    const mv = await web.authed('POST', '/api/mv', {body: JSON.stringify({src: '/copy/a.txt', dst: '/copy/b.txt'})})
    expect(mv.status, mv.text).to.equal(200)
    const ls = await runCli(['ls', '/copy', '--json'], {env})
    expect((JSON.parse(ls.stdout) as Array<{name: string}>).map((e) => e.name)).to.deep.equal(['b.txt', 'Отчёт 2026.txt'])
    const rm = await web.authed('DELETE', '/api/file?path=/copy&recursive=1')
    expect(rm.status, rm.text).to.equal(200)
    expect((await runCli(['stat', '/copy'], {env})).code).to.equal(4)
  })

  it('streams a 64 MiB PUT to the backend with the server under 200 MB of RSS', async function () {
    const size = 64 * 1024 * 1024
    const hash = createHash('sha256')
    const body = Readable.from(
      (function* () {
        for (const chunk of seededChunks(size, 14)) {
          hash.update(chunk)
          yield chunk
        }
      })(),
    )
    const response = await web.authed('PUT', '/api/file?path=/big/upload.bin', {
      headers: {'Content-Type': 'application/octet-stream', 'Content-Length': String(size)},
      body,
    })
    expect(response.status, response.text).to.equal(201)
    expect(JSON.parse(response.text)).to.include({path: '/big/upload.bin', size})
    expect(await sha256File(path.join(dirs.localRoot, 'big', 'upload.bin'))).to.equal(hash.digest('hex'))
    const rss = await peakRss(web.child.pid!)
    console.log(`      server peak RSS (VmHWM) after a 64 MiB upload: ${(rss / 1048576).toFixed(1)} MiB`)
    expect(rss).to.be.below(200 * 1024 * 1024)
  })

  it('stops cleanly on SIGTERM', async () => {
    const other = await startWeb(env)
    const exit = new Promise<number | null>((resolve) => other.child.once('exit', (code) => resolve(code)))
    other.child.kill('SIGTERM')
    expect(await exit).to.equal(0)
  })
})
