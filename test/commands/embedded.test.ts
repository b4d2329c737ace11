import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {collect, runCli, spawnCli, type CliResult} from '../helpers/cli.js'

describe('the embedded cluster (the default backend)', function () {
  // Several CLIs at once on a shared 2-core machine: generous, the tests wait on conditions.
  this.timeout(180_000)
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
    expect(await fs.readdir(data)).to.include('server0')
    // No holder is left behind: no pid file, no socket.
    expect(await fs.readdir(data)).not.to.include.members(['lock'])
    expect(await fs.readdir(data)).not.to.include.members(['sock'])
  })

  it('lets a second process attach to the one holding the data dir and work normally, instead of waiting', async () => {
    const fifo = path.join(work, 'slow.fifo')
    execFileSync('mkfifo', [fifo])
    const holder = spawnCli(['upload', 'slow.fifo', '/slow.bin'], {env, cwd: work})
    const held = collect(holder)
    const writer = await fs.open(fifo, 'w')
    const data = path.join(work, '.local/share/disk-client/cluster')
    await holderPid(data, holder.pid!)
    await fs.writeFile(path.join(work, 'quick.txt'), 'beside the holder\n')
    const second = await runCli(['upload', 'quick.txt', '/quick.txt'], {env, cwd: work, timeoutMs: 30_000})
    expect(second.code, second.stderr).to.equal(0)
    const listed = await runCli(['ls', '/', '--json'], {env, cwd: work, timeoutMs: 30_000})
    expect(listed.code, listed.stderr).to.equal(0)
    expect(JSON.parse(listed.stdout).map((e: {name: string}) => e.name)).to.deep.equal(['quick.txt'])
    const status = await runCli(['cluster', 'status', '--json'], {env, cwd: work, timeoutMs: 30_000})
    expect(status.code, status.stderr).to.equal(0)
    expect(JSON.parse(status.stdout)).to.deep.include({servers: 1, servers_up: 1})
    expect(JSON.parse(status.stdout).members[0]).to.include({addr: `process ${holder.pid}`, state: 'up'})
    await writer.write(Buffer.from('late but whole'))
    await writer.close()
    const first = await held
    expect(first.code, first.stderr).to.equal(0)
    const after = await runCli(['ls', '/', '--json'], {env, cwd: work})
    expect(JSON.parse(after.stdout).map((e: {name: string}) => e.name).sort()).to.deep.equal(['quick.txt', 'slow.bin'])
  })

  it('runs two uploads into one data dir at once while a third process lists it: all succeed, nothing is lost', async () => {
    const files = ['one.bin', 'two.bin']
    for (const [i, name] of files.entries()) await fs.writeFile(path.join(work, name), seeded(i + 1, 24 * MiB))
    const uploads = files.map((name) => runCli(['upload', name, `/up/${name}`], {env, cwd: work, timeoutMs: 120_000}))
    let done = false
    const lists: CliResult[] = []
    const lister = (async () => {
      while (!done) lists.push(await runCli(['ls', '/', '--json'], {env, cwd: work, timeoutMs: 60_000}))
    })()
    const results = await Promise.all(uploads)
    done = true
    await lister
    for (const result of results) expect(result.code, result.stderr).to.equal(0)
    expect(lists.length).to.be.greaterThan(0)
    for (const result of lists) expect(result.code, result.stderr).to.equal(0)
    await expectSame(files)
  })

  it('survives the holder being SIGKILLed mid-way: the attached uploads take over and finish, data intact', async () => {
    const data = path.join(work, '.local/share/disk-client/cluster')
    execFileSync('mkfifo', [path.join(work, 'slow.fifo'), path.join(work, 'a.fifo'), path.join(work, 'b.fifo')])
    const holder = spawnCli(['upload', 'slow.fifo', '/slow.bin'], {env, cwd: work})
    const held = collect(holder)
    const slow = await fs.open(path.join(work, 'slow.fifo'), 'w')
    await holderPid(data, holder.pid!)
    const names = ['a', 'b']
    const contents = names.map((_, i) => seeded(10 + i, 16 * MiB))
    // -v: each upload logs whether it attached, held, or lost the holder, so a failure shows where it got to.
    const uploads = names.map((name) => runCli(['upload', '-v', `${name}.fifo`, `/${name}.bin`], {env, cwd: work, timeoutMs: 150_000}))
    // An upload that ends before it has read everything would leave a write to its pipe hanging: fail with its output instead.
    const early = Promise.all(uploads).then((results) => {
      throw new Error(`an upload ended early: ${results.map((r) => `exit ${r.code} ${r.stderr}`).join('; ')}`)
    })
    early.catch(() => undefined)
    const unlessEarly = <T>(step: Promise<T>): Promise<T> => Promise.race([step, early])
    const writers = await unlessEarly(Promise.all(names.map((name) => fs.open(path.join(work, `${name}.fifo`), 'w'))))
    // Half of each file is read (so pieces of it went to the holder) before the holder dies.
    await unlessEarly(Promise.all(writers.map((writer, i) => writer.write(contents[i].subarray(0, 8 * MiB)))))
    holder.kill('SIGKILL')
    expect((await held).signal).to.equal('SIGKILL')
    await slow.close().catch(() => undefined)
    await unlessEarly(Promise.all(writers.map((writer, i) => writer.write(contents[i].subarray(8 * MiB)))))
    await Promise.all(writers.map((writer) => writer.close()))
    const results = await Promise.all(uploads)
    for (const [i, result] of results.entries()) {
      const state = result.hung ?? `signal ${result.signal}`
      expect(result.code, `upload of ${names[i]}.fifo: exit ${result.code}, ${state}, stderr:\n${result.stderr}`).to.equal(0)
    }
    for (const [i, name] of names.entries()) await fs.writeFile(path.join(work, `${name}.bin`), contents[i])
    await expectSame(['a.bin', 'b.bin'], '/')
    const listed = await runCli(['ls', '/', '--json'], {env, cwd: work})
    expect(JSON.parse(listed.stdout).map((e: {name: string}) => e.name).sort()).to.deep.equal(['a.bin', 'b.bin'])
  })

  /** Waits until `pid` holds the data dir (its pid file names it). */
  async function holderPid(data: string, pid: number): Promise<void> {
    const deadline = Date.now() + 20_000
    while ((await fs.readFile(path.join(data, 'lock'), 'utf8').catch(() => '')).trim() !== String(pid)) {
      if (Date.now() > deadline) throw new Error(`process ${pid} did not take the data dir`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** Downloads each file from the cluster and compares it with the local original. */
  async function expectSame(names: string[], folder = '/up/'): Promise<void> {
    for (const name of names) {
      const back = path.join(work, `${name}.back`)
      const result = await runCli(['download', `${folder}${name}`, back], {env, cwd: work, timeoutMs: 60_000})
      expect(result.code, result.stderr).to.equal(0)
      expect((await fs.readFile(back)).equals(await fs.readFile(path.join(work, name))), `${name} came back different`).to.equal(true)
    }
  }
})

const MiB = 1024 * 1024

/** Deterministic bytes: SHA-256 in counter mode over a seed. */
function seeded(seed: number, size: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  for (let offset = 0, block = 0; offset < size; offset += 32, block++) {
    createHash('sha256').update(`${seed}:${block}`).digest().copy(out, offset)
  }
  return out
}
