import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {collect, runCli, spawnCli, type CliResult} from '../helpers/cli.js'

describe('the embedded cluster (the default backend)', function () {
  this.timeout(60_000)
  let work: string
  let env: NodeJS.ProcessEnv

  beforeEach(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-embedded-cli-'))
    env = {HOME: work}
  })

  afterEach(() => fs.rm(work, {recursive: true, force: true}))

  it("runs the README's first command with nothing else running, twice, and keeps the data between commands", async () => {
    // The command as the README gives it: `npm ci && npx disk-client … && npx disk-client …`.
    const readme = await fs.readFile(new URL('../../README.md', import.meta.url), 'utf8')
    const line = readme.split('\n').find((text) => text.startsWith('npm ci && npx disk-client '))
    expect(line, 'the README has no `npm ci && npx disk-client …` line').to.be.a('string')
    const commands = line!.split(' && ').slice(1).map((command) => command.replace(/^npx disk-client /, '').split(' '))
    expect(commands.map((args) => args[0])).to.deep.equal(['upload', 'ls'])
    await fs.writeFile(path.join(work, 'README.md'), '# hello\n')
    let ls: CliResult = {code: -1, signal: null, stdout: '', stderr: ''}
    for (let run = 0; run < 2; run++) {
      for (const args of commands) {
        const result = await runCli(args, {env, cwd: work})
        expect(result.code, `${args.join(' ')}: ${result.stderr}`).to.equal(0)
        if (args[0] === 'ls') ls = result
      }
    }

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
