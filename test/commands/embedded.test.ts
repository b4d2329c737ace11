import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {collect, runCli, spawnCli} from '../helpers/cli.js'

describe('the embedded cluster (the default backend)', function () {
  this.timeout(60_000)
  let work: string
  let env: NodeJS.ProcessEnv

  beforeEach(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-embedded-cli-'))
    env = {HOME: work}
  })

  afterEach(() => fs.rm(work, {recursive: true, force: true}))

  it("runs the README's first command with nothing else running, and keeps the data between commands", async () => {
    await fs.writeFile(path.join(work, 'README.md'), '# hello\n')
    const up = await runCli(['upload', 'README.md', '/docs/README.md'], {env, cwd: work})
    expect(up.code, up.stderr).to.equal(0)
    const ls = await runCli(['ls', '-l', '/docs'], {env, cwd: work})
    expect(ls.code, ls.stderr).to.equal(0)
    expect(ls.stdout).to.match(/^-\s+8\s+\S+ \S+\s+README\.md\n$/)
    const data = path.join(work, '.local/share/disk-client/cluster')
    expect((await fs.readdir(data)).sort()).to.include.members(['router', 'server0'])
    expect(await fs.readdir(data)).not.to.include('lock')
  })

  it('makes a second process wait for the data dir, then exit 5 with a clear message', async () => {
    const fifo = path.join(work, 'slow.fifo')
    execFileSync('mkfifo', [fifo])
    const holder = spawnCli(['upload', 'slow.fifo', '/slow.bin'], {env, cwd: work})
    const held = collect(holder)
    const writer = await fs.open(fifo, 'w')
    const lock = path.join(work, '.local/share/disk-client/cluster/lock')
    const deadline = Date.now() + 20_000
    while (!(await fs.stat(lock).catch(() => null)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    const second = await runCli(['ls', '/'], {env, cwd: work})
    expect(second.code).to.equal(5)
    expect(second.stderr).to.match(/^Error: .*data dir .* is in use by process \d+; wait for it to finish, or run a cluster and set DISK_CLUSTER\n$/)
    await writer.write(Buffer.from('late but whole'))
    await writer.close()
    const first = await held
    expect(first.code, first.stderr).to.equal(0)
    const after = await runCli(['ls', '/', '--json'], {env, cwd: work})
    expect(JSON.parse(after.stdout).map((e: {name: string}) => e.name)).to.deep.equal(['slow.bin'])
  })
})
