import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {runCli, spawnCli, collect, type CliResult} from '../helpers/cli.js'

describe('file commands through the CLI (local backend)', function () {
  this.timeout(30_000)
  let work: string
  let root: string
  let env: NodeJS.ProcessEnv

  const cli = (...args: string[]): Promise<CliResult> => runCli(args, {env, cwd: work})
  const json = (result: CliResult): any => JSON.parse(result.stdout)
  const oneErrorLine = (result: CliResult, pattern: RegExp) => {
    const lines = result.stderr.trimEnd().split('\n')
    expect(lines, result.stderr).to.have.length(1)
    expect(lines[0]).to.match(/^Error: /)
    expect(lines[0]).to.match(pattern)
  }

  beforeEach(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-cli-'))
    root = path.join(work, 'root')
    env = {HOME: path.join(work, 'home'), DISK_BACKEND: 'local', DISK_LOCAL_ROOT: root}
    await fs.writeFile(path.join(work, 'a.txt'), 'alpha\n')
  })

  afterEach(() => fs.rm(work, {recursive: true, force: true}))

  it('uploads a file, lists it long and as JSON, and stats it', async () => {
    const up = await cli('upload', 'a.txt', '/docs/a.txt')
    expect(up.code, up.stderr).to.equal(0)
    expect(up.stderr).to.include('uploaded')
    expect(await fs.readFile(path.join(root, 'docs/a.txt'), 'utf8')).to.equal('alpha\n')

    const long = await cli('ls', '-l', '/docs')
    expect(long.code).to.equal(0)
    expect(long.stdout).to.match(/^-\s+6\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+a\.txt\n$/)

    const listed = await cli('ls', '/', '--json')
    expect(listed.code).to.equal(0)
    expect(json(listed)).to.deep.equal([{name: 'docs', path: '/docs', type: 'dir', size: null, modified: json(listed)[0].modified}])

    const stat = await cli('stat', '/docs/a.txt', '--json')
    expect(json(stat)).to.include({name: 'a.txt', path: '/docs/a.txt', type: 'file', size: 6})
  })

  it('lists a file as that one file', async () => {
    await cli('upload', 'a.txt', '/a.txt')
    const result = await cli('ls', '/a.txt')
    expect(result.code).to.equal(0)
    expect(result.stdout).to.equal('a.txt\n')
  })

  it('refuses to replace a file without --overwrite (exit 6 with the hint) and replaces it with it', async () => {
    await cli('upload', 'a.txt', '/a.txt')
    await fs.writeFile(path.join(work, 'a.txt'), 'second version\n')
    const refused = await cli('upload', 'a.txt', '/a.txt')
    expect(refused.code).to.equal(6)
    oneErrorLine(refused, /cannot upload .*a\.txt to \/a\.txt: destination already exists; use --overwrite$/)
    expect(await fs.readFile(path.join(root, 'a.txt'), 'utf8')).to.equal('alpha\n')

    const asJson = await cli('upload', 'a.txt', '/a.txt', '--json')
    expect(asJson.code).to.equal(6)
    expect(json(asJson).error).to.include({code: 'ECONFLICT', exitCode: 6})
    expect(json(asJson).error.message).to.include('use --overwrite')

    const replaced = await cli('upload', 'a.txt', '/a.txt', '--overwrite')
    expect(replaced.code).to.equal(0)
    expect(await fs.readFile(path.join(root, 'a.txt'), 'utf8')).to.equal('second version\n')
  })

  it('puts a source inside an existing destination directory and creates missing parents', async () => {
    await cli('mkdir', '/inbox')
    expect((await cli('upload', 'a.txt', '/inbox')).code).to.equal(0)
    expect(await fs.readFile(path.join(root, 'inbox/a.txt'), 'utf8')).to.equal('alpha\n')
    expect((await cli('cp', '/inbox/a.txt', '/deep/er/copy.txt')).code).to.equal(0)
    expect(await fs.readFile(path.join(root, 'deep/er/copy.txt'), 'utf8')).to.equal('alpha\n')
  })

  it('uploads and downloads a whole tree with parallel transfers', async () => {
    const tree = path.join(work, 'tree')
    await fs.mkdir(path.join(tree, 'sub/deeper'), {recursive: true})
    const files: Record<string, Buffer> = {}
    for (const name of ['one.bin', 'sub/two.bin', 'sub/deeper/three.bin', 'sub/deeper/four.bin']) {
      files[name] = randomBytes(50_000)
      await fs.writeFile(path.join(tree, name), files[name])
    }

    const up = await cli('upload', 'tree', '/backup', '--transfers', '3', '--json')
    expect(up.code, up.stderr).to.equal(0)
    expect(json(up)).to.include({destination: '/backup', type: 'dir', files: 4, bytes: 200_000})

    const down = await cli('download', '/backup', 'restored')
    expect(down.code, down.stderr).to.equal(0)
    for (const [name, content] of Object.entries(files)) {
      expect((await fs.readFile(path.join(work, 'restored', name))).equals(content), name).to.equal(true)
    }
  })

  it('moves and renames server-side, leaving nothing at the source', async () => {
    await cli('upload', 'a.txt', '/file1.txt')
    const moved = await cli('mv', '/file1.txt', '/file2.txt', '--json')
    expect(moved.code).to.equal(0)
    expect(json(moved)).to.include({source: '/file1.txt', destination: '/file2.txt', serverSide: true})
    expect((await cli('ls', '/')).stdout).to.equal('file2.txt\n')
  })

  it('copies across backends by prefix, streamed', async () => {
    await cli('upload', 'a.txt', 'local:/x.txt')
    const copied = await cli('cp', 'local:/x.txt', 'local:/y.txt', '--json')
    expect(copied.code).to.equal(0)
    expect(json(copied)).to.include({destination: '/y.txt'})
  })

  it('removes a file, refuses a directory without -r (exit 2), and removes it with -r', async () => {
    await cli('upload', 'a.txt', '/d/a.txt')
    const refused = await cli('rm', '/d')
    expect(refused.code).to.equal(2)
    oneErrorLine(refused, /cannot remove \/d: is a directory; use -r/)
    expect((await cli('rm', '/d/a.txt')).code).to.equal(0)
    const removed = await cli('rm', '/d', '-r', '--json')
    expect(removed.code).to.equal(0)
    expect(json(removed)).to.deep.equal({removed: '/d'})
    expect((await cli('ls', '/')).stdout).to.equal('')
  })

  it('creates directories: -p accepts an existing one, without it exit 6; a missing parent is exit 3', async () => {
    const missingParent = await cli('mkdir', '/a/b')
    expect(missingParent.code).to.equal(3)
    oneErrorLine(missingParent, /parent directory not found/)
    expect((await cli('mkdir', '-p', '/a/b')).code).to.equal(0)
    expect((await cli('mkdir', '-p', '/a/b')).code).to.equal(0)
    const exists = await cli('mkdir', '/a/b', '--json')
    expect(exists.code).to.equal(6)
    expect(json(exists).error.exitCode).to.equal(6)
  })

  it('exits 3 for a missing directory, 4 for a missing file, 2 for a bad path or flag', async () => {
    const dir = await cli('ls', '/nope')
    expect(dir.code).to.equal(3)
    oneErrorLine(dir, /cannot list \/nope: directory not found/)
    const file = await cli('stat', '/nope.txt', '--json')
    expect(file.code).to.equal(4)
    expect(json(file).error).to.include({code: 'ENOTFOUND_FILE', exitCode: 4})
    const climbing = await cli('ls', '/../etc')
    expect(climbing.code).to.equal(2)
    oneErrorLine(climbing, /climbs above the root/)
    const relative = await cli('stat', 'relative/path')
    expect(relative.code).to.equal(2)
    const badFlag = await cli('ls', '--backend', 'floppy')
    expect(badFlag.code).to.equal(2)
    oneErrorLine(badFlag, /floppy/)
    expect(dir.stderr + file.stderr).not.to.match(/\n\s+at /)
  })

  it('shows a stack trace only with --verbose', async () => {
    const result = await cli('stat', '/nope', '-v')
    expect(result.code).to.equal(4)
    expect(result.stderr).to.match(/^Error: cannot stat \/nope/)
    expect(result.stderr).to.match(/\n\s+at /)
  })

  it('reports the quota as JSON with the four fields', async () => {
    const result = await cli('about', '--json')
    expect(result.code).to.equal(0)
    const about = json(result)
    expect(about.total).to.be.a('number')
    expect(about.free).to.be.a('number')
    expect(about.trash).to.equal(null)
  })

  it('downloads to a temporary file and leaves an existing target untouched on conflict', async () => {
    await cli('upload', 'a.txt', '/a.txt')
    await fs.writeFile(path.join(work, 'local.txt'), 'precious')
    const refused = await cli('download', '/a.txt', 'local.txt')
    expect(refused.code).to.equal(6)
    expect(await fs.readFile(path.join(work, 'local.txt'), 'utf8')).to.equal('precious')
    expect((await cli('download', '/a.txt', 'local.txt', '--overwrite')).code).to.equal(0)
    expect(await fs.readFile(path.join(work, 'local.txt'), 'utf8')).to.equal('alpha\n')
    expect((await fs.readdir(work)).filter((n) => n.endsWith('.partial'))).to.deep.equal([])
  })

  it('removes the partial file when a transfer is interrupted, leaving no target', async () => {
    // A FIFO as the source keeps the transfer open for as long as the test wants.
    const fifo = path.join(work, 'slow.fifo')
    execFileSync('mkfifo', [fifo])
    const child = spawnCli(['upload', 'slow.fifo', '/slow.bin'], {env, cwd: work})
    const done = collect(child)
    const writer = await fs.open(fifo, 'w')
    await writer.write(randomBytes(64 * 1024))
    const partials = async () => (await fs.readdir(root).catch(() => [] as string[])).filter((n) => n.endsWith('.partial'))
    const deadline = Date.now() + 10_000
    while ((await partials()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(await partials()).to.have.length(1)
    child.kill('SIGINT')
    // A read blocked on the FIFO holds up process exit until the writer closes.
    await writer.close()
    const result = await done
    expect(result.code).to.equal(130)
    expect(await partials()).to.deep.equal([])
    expect(await fs.readdir(root)).not.to.include('slow.bin')
  })
})

describe('config commands', function () {
  this.timeout(20_000)
  let home: string
  beforeEach(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-home-'))
  })
  afterEach(() => fs.rm(home, {recursive: true, force: true}))

  it('sets, gets (redacted) and lists values in a 0600 config file', async () => {
    const env = {HOME: home}
    const set = await runCli(['config', 'set', 'yandex.token', 'y0_secret_token_value'], {env})
    expect(set.code, set.stderr).to.equal(0)
    const file = path.join(home, '.config/disk-client/config.json')
    expect((await fs.stat(file)).mode & 0o777).to.equal(0o600)
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).to.deep.equal({'yandex.token': 'y0_secret_token_value'})
    const got = await runCli(['config', 'get', 'yandex.token'], {env})
    expect(got.stdout.trim()).to.equal('y0_…lue')
    const revealed = await runCli(['config', 'get', 'yandex.token', '--reveal'], {env})
    expect(revealed.stdout.trim()).to.equal('y0_secret_token_value')
    await runCli(['config', 'set', 'backend', 'local'], {env})
    const listed = await runCli(['config', 'list', '--json'], {env})
    expect(JSON.parse(listed.stdout)).to.deep.equal({'yandex.token': 'y0_…lue', backend: 'local'})
  })

  it('rejects an unknown key with exit 2 and reports an unset key with exit 4', async () => {
    const bad = await runCli(['config', 'set', 'colour', 'blue'], {env: {HOME: home}})
    expect(bad.code).to.equal(2)
    expect(bad.stderr).to.match(/^Error: unknown config key "colour"/)
    const unset = await runCli(['config', 'get', 'backend'], {env: {HOME: home}})
    expect(unset.code).to.equal(4)
  })

  it('uses the config file backend unless the environment overrides it', async () => {
    const root = path.join(home, 'root')
    await runCli(['config', 'set', 'local.root', root], {env: {HOME: home}})
    await runCli(['config', 'set', 'backend', 'local'], {env: {HOME: home}})
    expect((await runCli(['mkdir', '/from-config'], {env: {HOME: home}})).code).to.equal(0)
    expect((await fs.stat(path.join(root, 'from-config'))).isDirectory()).to.equal(true)
    const viaEnv = await runCli(['mkdir', '/x'], {env: {HOME: home, DISK_BACKEND: 'yandex'}})
    expect(viaEnv.code).not.to.equal(0)
  })
})
