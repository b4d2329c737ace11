// `disk-client serve webdav` over the embedded cluster, driven by third-party
// clients: litmus (the WebDAV conformance suite) and rclone's webdav remote.
import {spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {collect} from '../helpers/cli.js'
import {serveWebdav as serve, type Served, stopWebdav as stop} from '../helpers/serve-webdav.js'

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string) {
  return collect(spawn(command, args, {env: {...process.env, ...env}, cwd}), {timeoutMs: 180_000})
}

function request(url: string, method: string, headers: Record<string, string> = {}, body?: string) {
  return new Promise<{status: number; headers: http.IncomingHttpHeaders; body: string}>((resolve, reject) => {
    const req = http.request(url, {method, headers}, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: text}))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Every file under `dir` with its SHA-256, by relative path. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const entry of await fs.readdir(dir, {recursive: true, withFileTypes: true})) {
    if (!entry.isFile()) continue
    const full = path.join(entry.parentPath, entry.name)
    out[path.relative(dir, full)] = createHash('sha256').update(await fs.readFile(full)).digest('hex')
  }

  return out
}

describe('serve webdav over the embedded cluster', function () {
  this.timeout(300_000)
  let dir: string
  let env: NodeJS.ProcessEnv
  let served: Served | undefined

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-serve-webdav-'))
    env = {HOME: path.join(dir, 'home'), DISK_DATA_DIR: path.join(dir, 'data')}
    served = await serve([], env)
  })

  after(async () => {
    await stop(served)
    await fs.rm(dir, {recursive: true, force: true})
  })

  it('passes the litmus suites basic, copymove, props and locks with no failures and no warnings', async () => {
    // litmus -k exits 0 even when tests fail: the summary lines are the verdict.
    const result = await run('litmus', ['-k', served!.url], {TESTS: 'basic copymove props locks'}, dir)
    const summaries = [...result.stdout.matchAll(/summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed/g)].map((m) => ({
      suite: m[1],
      run: Number(m[2]),
      passed: Number(m[3]),
      failed: Number(m[4]),
    }))
    expect(summaries.map((s) => s.suite), result.stdout).to.deep.equal(['basic', 'copymove', 'props', 'locks'])
    for (const s of summaries) {
      expect(s.failed, `${s.suite}: ${result.stdout}`).to.equal(0)
      expect(s.passed, s.suite).to.equal(s.run).and.to.be.above(10)
    }

    expect(result.stdout, 'litmus warnings').not.to.match(/WARNING/)
  })

  it('lets rclone copy a tree in and out identical', async () => {
    const source = path.join(dir, 'tree-in')
    await fs.mkdir(path.join(source, 'deep', 'er', 'est'), {recursive: true})
    await fs.writeFile(path.join(source, 'a.txt'), 'alpha\n')
    await fs.writeFile(path.join(source, 'empty'), '')
    await fs.writeFile(path.join(source, 'name with spaces + дом.txt'), 'odd\n')
    await fs.writeFile(path.join(source, 'deep', 'big.bin'), randomBytes(5 << 20))
    for (let i = 0; i < 20; i++) await fs.writeFile(path.join(source, 'deep', 'er', 'est', `f${i}`), randomBytes(1000 + i))
    const remote = {RCLONE_CONFIG_D_TYPE: 'webdav', RCLONE_CONFIG_D_URL: served!.url, RCLONE_CONFIG_D_VENDOR: 'other', RCLONE_CONFIG: '/dev/null'}
    const up = await run('rclone', ['copy', source, 'd:tree'], remote)
    expect(up.code, up.stderr).to.equal(0)
    const back = path.join(dir, 'tree-out')
    const down = await run('rclone', ['copy', 'd:tree', back], remote)
    expect(down.code, down.stderr).to.equal(0)
    const want = await tree(source)
    expect(Object.keys(want)).to.have.length(24)
    expect(await tree(back)).to.deep.equal(want)
    const check = await run('rclone', ['check', source, 'd:tree'], remote)
    expect(check.code, check.stderr).to.equal(0)
  })

  it('survives garbage on its socket and keeps answering', async () => {
    const port = Number(new URL(served!.url).port)
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('\x00\x01garbage\r\n\r\nPROPFIND\r\n\r\n'))
      let text = ''
      socket.on('data', (chunk) => (text += chunk.toString()))
      socket.on('close', () => resolve(text))
      socket.on('error', reject)
    })
    expect(reply).to.match(/^HTTP\/1\.1 400/)
    const bad = await request(`${served!.url}%ZZ`, 'PROPFIND', {Depth: '0'})
    expect(bad.status).to.equal(400)
    const malformed = await request(served!.url, 'PROPFIND', {Depth: '0'}, '<propfind xmlns="DAV:"><prop>')
    expect(malformed.status).to.equal(400)
    const options = await request(served!.url, 'OPTIONS')
    expect(options.status).to.equal(200)
    expect(options.headers.dav).to.equal('1, 2')
  })
})

describe('serve webdav: auth, persistent properties, signals', function () {
  this.timeout(120_000)
  let dir: string
  let served: Served | undefined

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-serve-webdav-'))
  })

  after(async () => {
    await stop(served)
    await fs.rm(dir, {recursive: true, force: true})
  })

  it('asks for basic auth with --user/--pass, keeps dead properties across a restart, and exits 0 on SIGTERM', async () => {
    const env = {HOME: path.join(dir, 'home'), DISK_LOCAL_ROOT: path.join(dir, 'root')}
    const args = ['--backend', 'local', '--user', 'me', '--pass', 'secret']
    served = await serve(args, env)
    const good = {Authorization: 'Basic ' + Buffer.from('me:secret').toString('base64')}
    expect((await request(served.url, 'PROPFIND', {Depth: '0'})).status).to.equal(401)
    expect((await request(served.url, 'PROPFIND', {Depth: '0', Authorization: 'Basic ' + Buffer.from('me:wrong').toString('base64')})).status).to.equal(401)
    expect((await request(`${served.url}note.txt`, 'PUT', good, 'hello')).status).to.equal(201)
    const patch = await request(
      `${served.url}note.txt`,
      'PROPPATCH',
      good,
      '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:test"><D:set><D:prop><Z:colour>teal &amp; <Z:b>bold</Z:b></Z:colour></D:prop></D:set></D:propertyupdate>',
    )
    expect(patch.status).to.equal(207)
    expect(patch.body).to.match(/HTTP\/1\.1 200 OK/)
    expect(await stop(served)).to.equal(0)
    served = await serve(args, env)
    const found = await request(
      `${served.url}note.txt`,
      'PROPFIND',
      {...good, Depth: '0'},
      '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><colour xmlns="urn:test"/><getcontentlength/></prop></propfind>',
    )
    expect(found.status).to.equal(207)
    expect(found.body).to.match(/<R:colour xmlns:R="urn:test">teal &amp; <x:b xmlns:x="urn:test">bold<\/x:b><\/R:colour>/)
    expect(found.body).to.include('<D:getcontentlength>5</D:getcontentlength>')
    expect(await fs.readFile(path.join(dir, 'root', 'note.txt'), 'utf8')).to.equal('hello')
  })
})
