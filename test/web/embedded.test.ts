import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'

import {collect, runCli, spawnCli} from '../helpers/cli.js'
import {startWeb, tempDirs, type WebProcess} from './helpers.js'

describe('web console on the embedded cluster', function () {
  this.timeout(120_000)
  let dirs: Awaited<ReturnType<typeof tempDirs>>
  let env: NodeJS.ProcessEnv
  let web: WebProcess

  before(async () => {
    dirs = await tempDirs()
    env = {DISK_LOCAL_ROOT: dirs.localRoot, DISK_DATA_DIR: dirs.dataDir, HOME: dirs.work}
    await fs.writeFile(path.join(dirs.work, 'note.txt'), 'written by the CLI while the console runs\n')
    web = await startWeb(env)
  })

  after(async () => {
    await web?.stop()
    await dirs?.remove()
  })

  it('holds the data dir while other commands attach to it and run beside it', async () => {
    const first = await web.authed('GET', '/api/ls?path=/')
    expect(first.status, first.text).to.equal(200)
    expect(JSON.parse(first.text)).to.deep.equal([])
    // The console keeps the data dir (its pid in the pid file); the CLI attaches to it.
    expect((await fs.readFile(path.join(dirs.dataDir, 'lock'), 'utf8')).trim()).to.equal(String(web.child.pid))
    const upload = await runCli(['upload', path.join(dirs.work, 'note.txt'), '/note.txt'], {env, timeoutMs: 60_000})
    expect(upload.code, upload.stderr).to.equal(0)
    const after = await web.authed('GET', '/api/ls?path=/')
    expect(after.status, after.text).to.equal(200)
    expect((JSON.parse(after.text) as Array<{name: string}>).map((e) => e.name)).to.deep.equal(['note.txt'])
    const file = await web.authed('GET', '/api/file?path=/note.txt')
    expect(file.text).to.equal('written by the CLI while the console runs\n')
    const status = await web.authed('GET', '/api/cluster')
    expect(status.status, status.text).to.equal(200)
    expect((JSON.parse(status.text) as {servers: number; servers_up: number})).to.include({servers: 1, servers_up: 1})
    const page = await web.authed('GET', '/cluster')
    expect(page.text).to.include('Embedded cluster, data in')
    expect((await fs.readFile(path.join(dirs.dataDir, 'lock'), 'utf8')).trim()).to.equal(String(web.child.pid))
  })

  it('attaches to a CLI that holds the data dir, and takes it over when that CLI exits', async () => {
    const other = await tempDirs()
    const otherEnv = {...env, DISK_DATA_DIR: other.dataDir}
    const fifo = path.join(other.work, 'slow.fifo')
    await fs.mkdir(other.work, {recursive: true})
    execFileSync('mkfifo', [fifo])
    const holder = spawnCli(['upload', fifo, '/slow.txt'], {env: otherEnv})
    const held = collect(holder)
    const writer = await fs.open(fifo, 'w')
    let second: WebProcess | undefined
    try {
      const deadline = Date.now() + 20_000
      while ((await fs.readFile(path.join(other.dataDir, 'lock'), 'utf8').catch(() => '')).trim() !== String(holder.pid)) {
        if (Date.now() > deadline) throw new Error('the CLI did not take the data dir')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      second = await startWeb(otherEnv)
      const during = await second.authed('GET', '/api/ls?path=/')
      expect(during.status, during.text).to.equal(200)
      expect(JSON.parse(during.text)).to.deep.equal([])
      await writer.write(Buffer.from('from a slow pipe\n'))
      await writer.close()
      const done = await held
      expect(done.code, done.stderr).to.equal(0)
      const after = await second.authed('GET', '/api/file?path=/slow.txt')
      expect(after.text).to.equal('from a slow pipe\n')
      expect((await fs.readFile(path.join(other.dataDir, 'lock'), 'utf8')).trim()).to.equal(String(second.child.pid))
    } finally {
      await writer.close().catch(() => undefined)
      holder.kill()
      await second?.stop()
      await other.remove()
    }
  })
})
