// The CLI against Yandex.Disk, through the real oclif entry point run in this
// process (so nock can stand in for the API): stdout, stderr, exit codes and
// --json, plus what a failed download leaves behind.
import {expect} from 'chai'
import {createHash, randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import nock from 'nock'

import {FakeYandexDisk} from '../backends/yandex/fake-disk.js'
import type {CliResult} from '../helpers/cli.js'
import {runInProcess} from '../helpers/in-process.js'

describe('file commands through the CLI (yandex backend, nock)', function () {
  this.timeout(30_000)
  let disk: FakeYandexDisk
  let work: string
  let env: NodeJS.ProcessEnv
  const cli = (...args: string[]): Promise<CliResult> => runInProcess(args, env)
  const errorLine = (result: CliResult) => {
    const lines = result.stderr.trimEnd().split('\n')
    expect(lines, result.stderr).to.have.length(1)
    return lines[0]
  }

  beforeEach(async () => {
    disk = new FakeYandexDisk({operationPolls: 1}).start()
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-ycli-'))
    env = {
      HOME: work,
      DISK_BACKEND: 'yandex',
      YANDEX_DISK_TOKEN: disk.token,
      YANDEX_DISK_API_URL: disk.apiUrl,
      DISK_RETRY_BASE_MS: '5',
    }
  })

  afterEach(async () => {
    disk.stop()
    nock.cleanAll()
    await fs.rm(work, {recursive: true, force: true})
  })

  it('renames a file as the user asked: mv /file1.txt /file2.txt', async () => {
    disk.addFile('/file1.txt', 'one')
    const result = await cli('mv', '/file1.txt', '/file2.txt')
    expect(result.code, result.stderr).to.equal(0)
    expect(disk.read('/file2.txt')?.toString()).to.equal('one')
    expect(disk.read('/file1.txt')).to.equal(undefined)
    disk.done()
  })

  it('lists with --json in the contract shape, including hashes', async () => {
    disk.addDir('/photos').addFile('/photos/cat.jpg', 'meow')
    const result = await cli('ls', 'yandex:/photos', '--json')
    expect(result.code, result.stderr).to.equal(0)
    const [entry] = JSON.parse(result.stdout)
    expect(entry).to.include({name: 'cat.jpg', path: '/photos/cat.jpg', type: 'file', size: 4})
    expect(entry.md5).to.equal(createHash('md5').update('meow').digest('hex'))
    expect(entry.sha256).to.equal(createHash('sha256').update('meow').digest('hex'))
  })

  it('uploads and downloads through the hrefs the API returns, never sending the token elsewhere', async () => {
    const content = randomBytes(200_000)
    await fs.writeFile(path.join(work, 'blob.bin'), content)
    const up = await cli('upload', path.join(work, 'blob.bin'), '/dir/blob.bin', '--json')
    expect(up.code, up.stderr).to.equal(0)
    expect(JSON.parse(up.stdout)).to.include({destination: '/dir/blob.bin', type: 'file'})
    expect(disk.read('/dir/blob.bin')?.equals(content)).to.equal(true)
    const down = await cli('download', '/dir/blob.bin', path.join(work, 'back.bin'))
    expect(down.code, down.stderr).to.equal(0)
    expect((await fs.readFile(path.join(work, 'back.bin'))).equals(content)).to.equal(true)
    disk.done()
  })

  it('exits 7 without a token, naming YANDEX_DISK_TOKEN and config set', async () => {
    delete env.YANDEX_DISK_TOKEN
    const result = await cli('ls', '/')
    expect(result.code).to.equal(7)
    expect(errorLine(result)).to.match(/YANDEX_DISK_TOKEN.*disk-client config set yandex\.token/)
  })

  it('exits 7 on 401, with the JSON error carrying the exit code', async () => {
    env.YANDEX_DISK_TOKEN = 'wrong-token'
    const result = await cli('ls', '/', '--json')
    expect(result.code).to.equal(7)
    expect(JSON.parse(result.stdout).error).to.include({code: 'EAUTH', exitCode: 7})
  })

  it('exits 3 for a missing directory and 4 for a missing file, naming the API code', async () => {
    const dir = await cli('ls', '/nope')
    expect(dir.code).to.equal(3)
    expect(errorLine(dir)).to.match(/^Error: cannot list \/nope: .*\(DiskNotFoundError\)/)
    const file = await cli('stat', '/nope.txt')
    expect(file.code).to.equal(4)
  })

  it('exits 6 with the --overwrite hint when the destination exists', async () => {
    disk.addFile('/a.txt', 'a').addFile('/b.txt', 'b')
    const result = await cli('cp', '/a.txt', '/b.txt')
    expect(result.code).to.equal(6)
    expect(errorLine(result)).to.match(/^Error: cannot copy \/a\.txt to \/b\.txt: .*already exists.*use --overwrite$/)
    expect(disk.read('/b.txt')?.toString()).to.equal('b')
  })

  it('exits 5 when a 503 persists through --retries', async () => {
    disk.inject({method: 'GET', path: '/resources', status: 503, body: {error: 'ServiceUnavailable'}, times: 3})
    const result = await cli('ls', '/', '--retries', '2')
    expect(result.code).to.equal(5)
    expect(errorLine(result)).to.match(/503|unavailable/i)
  })

  it('exits 1 when a directory copy operation ends failed, leaving the source intact', async () => {
    disk.addDir('/src').addFile('/src/a.txt', 'a')
    disk.inject({method: 'GET', path: '/operations', status: 200, body: {status: 'failed'}})
    const result = await cli('cp', '/src', '/dst')
    expect(result.code).to.equal(1)
    expect(errorLine(result)).to.match(/failed/)
    expect(disk.read('/src/a.txt')?.toString()).to.equal('a')
  })

  it('uploads a file the upload host answers 202: waits for the operation, exit 0; a failed one exits 1', async () => {
    disk.asyncUploads = true
    const content = randomBytes(50_000)
    await fs.writeFile(path.join(work, 'large.bin'), content)
    const ok = await cli('upload', path.join(work, 'large.bin'), '/large.bin')
    expect(ok.code, ok.stderr).to.equal(0)
    expect(disk.read('/large.bin')?.equals(content)).to.equal(true)
    disk.failOperations = true
    const failed = await cli('upload', path.join(work, 'large.bin'), '/again.bin')
    expect(failed.code).to.equal(1)
    expect(errorLine(failed)).to.match(/^Error: cannot upload .*again\.bin: .*failed/)
    expect(disk.tree.has('/again.bin')).to.equal(false)
  })

  it('copies across backends, yandex to local, streamed', async () => {
    disk.addFile('/a.txt', 'from yandex')
    const root = path.join(work, 'local-root')
    env.DISK_LOCAL_ROOT = root
    const result = await cli('cp', 'yandex:/a.txt', 'local:/copied/a.txt', '--json')
    expect(result.code, result.stderr).to.equal(0)
    expect(JSON.parse(result.stdout)).to.include({serverSide: false, destination: '/copied/a.txt'})
    expect(await fs.readFile(path.join(root, 'copied/a.txt'), 'utf8')).to.equal('from yandex')
  })

  it('a download whose content fails its hash leaves no file and an existing target untouched', async () => {
    disk.addFile('/a.txt', 'true content')
    // The Disk claims hashes of other content: every attempt fails verification.
    const node = disk.tree.get('/a.txt')!
    node.md5 = createHash('md5').update('other').digest('hex')
    node.sha256 = createHash('sha256').update('other').digest('hex')
    const fresh = await cli('download', '/a.txt', path.join(work, 'fresh.txt'), '--retries', '1')
    expect(fresh.code).to.equal(1)
    expect(errorLine(fresh)).to.match(/mismatch/)
    await fs.writeFile(path.join(work, 'kept.txt'), 'precious')
    const over = await cli('download', '/a.txt', path.join(work, 'kept.txt'), '--overwrite', '--retries', '0')
    expect(over.code).to.equal(1)
    expect(await fs.readFile(path.join(work, 'kept.txt'), 'utf8')).to.equal('precious')
    expect((await fs.readdir(work)).sort()).to.deep.equal(['kept.txt'])
  })
})

describe('a download whose connection drops midway (nock)', function () {
  this.timeout(20_000)
  let work: string
  afterEach(async () => {
    nock.cleanAll()
    await fs.rm(work, {recursive: true, force: true})
  })

  it('leaves no file at the target and an existing target untouched', async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-drop-'))
    const api = 'https://api.drop.test/v1/disk'
    const body = Buffer.alloc(1_000_000, 7)
    const resource = {
      name: 'big.bin',
      path: 'disk:/big.bin',
      type: 'file',
      size: body.length,
      md5: createHash('md5').update(body).digest('hex'),
      sha256: createHash('sha256').update(body).digest('hex'),
      modified: new Date().toISOString(),
    }
    const scope = nock('https://api.drop.test')
      .persist()
      .get('/v1/disk/resources')
      .query(true)
      .reply(200, resource)
      .get('/v1/disk/resources/download')
      .query(true)
      .reply(200, {href: 'https://storage.drop.test/get/big.bin', method: 'GET'})
    const storage = nock('https://storage.drop.test')
      .persist()
      .get('/get/big.bin')
      .reply(200, () => {
        let sent = 0
        return new Readable({
          read() {
            if (sent >= 300_000) return void this.destroy(new Error('connection reset by peer'))
            sent += 100_000
            this.push(body.subarray(0, 100_000))
          },
        })
      }, {'content-length': String(body.length)})
    await fs.writeFile(path.join(work, 'existing.bin'), 'keep me')
    const env = {HOME: work, DISK_BACKEND: 'yandex', YANDEX_DISK_TOKEN: 't', YANDEX_DISK_API_URL: api, DISK_RETRY_BASE_MS: '5'}
    const fresh = await runInProcess(['download', '/big.bin', path.join(work, 'new.bin'), '--retries', '1'], env)
    expect(fresh.code).to.equal(5)
    const over = await runInProcess(['download', '/big.bin', path.join(work, 'existing.bin'), '--overwrite', '--retries', '0'], env)
    expect(over.code).to.equal(5)
    expect(await fs.readFile(path.join(work, 'existing.bin'), 'utf8')).to.equal('keep me')
    expect((await fs.readdir(work)).sort()).to.deep.equal(['existing.bin'])
    scope.persist(false)
    storage.persist(false)
  })
})
