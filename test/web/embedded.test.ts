import {expect} from 'chai'
import fs from 'node:fs/promises'
import path from 'node:path'

import {runCli} from '../helpers/cli.js'
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

  it('lets go of the data dir when idle, so other commands run beside it', async () => {
    const first = await web.authed('GET', '/api/ls?path=/')
    expect(first.status, first.text).to.equal(200)
    expect(JSON.parse(first.text)).to.deep.equal([])
    // The CLI waits for the embedded cluster's lock, which the idle console gives up.
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
  })
})
