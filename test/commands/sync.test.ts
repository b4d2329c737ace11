// sync and check through the real CLI (spawned processes): a local folder
// to the local backend and to the embedded cluster (a temp DISK_DATA_DIR),
// and folder to folder. What changed is read back from the destination
// itself (its listing's modified times and contents), not only from --json.
import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {type CliResult, collect, runCli, spawnCli} from '../helpers/cli.js'

interface Node {
  entry: {path: string; type: string; size: number | null; modified: string | null; sha256?: string}
  children?: Node[]
}

/** Every file and directory under a folder with its content hash and mtime. */
async function snapshotFolder(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const walk = async (dir: string) => {
    for (const name of (await fs.readdir(dir)).sort()) {
      const full = path.join(dir, name)
      const stat = await fs.stat(full)
      const key = path.relative(root, full)
      if (stat.isDirectory()) {
        out[key + '/'] = 'dir'
        await walk(full)
      } else {
        out[key] = `${createHash('sha256').update(await fs.readFile(full)).digest('hex')} ${stat.mtimeMs}`
      }
    }
  }

  await walk(root)
  return out
}

for (const backend of ['local', 'cluster'] as const) {
  describe(`sync and check: a local folder to ${backend}:/dst`, function () {
    this.timeout(120_000)
    let work: string
    let env: NodeJS.ProcessEnv
    const dst = `${backend}:/dst`
    const cli = (...args: string[]): Promise<CliResult> => runCli(args, {env, cwd: work, timeoutMs: 60_000})
    const json = async (...args: string[]) => {
      const result = await cli(...args, '--json')
      expect(result.code, result.stderr + result.stdout).to.be.oneOf([0, 1])
      return JSON.parse(result.stdout)
    }

    /** The destination as its backend lists it: path → size, sha256 (cluster) and modified time. */
    const snapshotDst = async (): Promise<Record<string, string>> => {
      const nodes = (await json('tree', dst)) as Node[]
      const out: Record<string, string> = {}
      const visit = (list: Node[]) => {
        for (const node of list) {
          out[node.entry.path] = `${node.entry.type} ${node.entry.size} ${node.entry.sha256 ?? ''} ${node.entry.modified}`
          if (node.children) visit(node.children)
        }
      }

      visit(nodes)
      return out
    }

    const write = async (rel: string, content: string, mtime?: Date) => {
      const file = path.join(work, 'src', rel)
      await fs.mkdir(path.dirname(file), {recursive: true})
      await fs.writeFile(file, content)
      if (mtime) await fs.utimes(file, mtime, mtime)
    }

    beforeEach(async () => {
      work = await fs.mkdtemp(path.join(os.tmpdir(), `disk-client-sync-${backend}-`))
      env = {HOME: work, DISK_LOCAL_ROOT: path.join(work, 'root'), DISK_DATA_DIR: path.join(work, 'cluster'), DISK_RETRY_BASE_MS: '5'}
      const past = new Date(Date.now() - 3600_000)
      await write('a.txt', 'alpha', past)
      await write('b.txt', 'bravo', past)
      await write('sub/c.txt', 'charlie', past)
      await write('sub/deep/d.txt', 'delta', past)
      await fs.mkdir(path.join(work, 'src/empty'))
    })

    afterEach(async () => {
      await fs.rm(work, {recursive: true, force: true})
    })

    it('copies everything, then a second sync with nothing changed transfers nothing', async () => {
      const srcBefore = await snapshotFolder(path.join(work, 'src'))
      const first = await json('sync', './src', dst)
      expect(first).to.deep.equal({copied: 4, deleted: 0, unchanged: 0, bytes: 22})
      expect((await cli('check', './src', dst)).code).to.equal(0)
      const dstAfterFirst = await snapshotDst()
      expect(Object.keys(dstAfterFirst)).to.include.members(['/dst/empty', '/dst/sub/deep/d.txt'])
      const second = await json('sync', './src', dst)
      expect(second).to.deep.equal({copied: 0, deleted: 0, unchanged: 4, bytes: 0})
      // Nothing was written again: every entry keeps its modified time.
      expect(await snapshotDst()).to.deep.equal(dstAfterFirst)
      expect(await snapshotFolder(path.join(work, 'src'))).to.deep.equal(srcBefore)
    })

    it('one modified, one added and one deleted file give one update, one copy and one deletion', async () => {
      await json('sync', './src', dst)
      const before = await snapshotDst()
      await write('a.txt', 'ALPHA', new Date(Date.now() + 5000)) // same size, clearly newer than the copy (mtimes compare within 1 s)
      await write('sub/new.txt', 'novel')
      await fs.rm(path.join(work, 'src/b.txt'))
      const srcBefore = await snapshotFolder(path.join(work, 'src'))

      const plan = await cli('sync', './src', dst, '--dry-run')
      expect(plan.code, plan.stderr).to.equal(0)
      expect(plan.stdout.trim().split('\n').sort()).to.deep.equal(['copy sub/new.txt', 'delete b.txt', 'update a.txt'])
      expect(await snapshotDst(), 'a dry run changes nothing').to.deep.equal(before)
      const check = await cli('check', './src', dst)
      expect(check.code).to.equal(1)
      expect(check.stdout.trim().split('\n')).to.deep.equal(['+ sub/new.txt', '- b.txt', '* a.txt'])

      const result = await json('sync', './src', dst)
      expect(result).to.deep.equal({copied: 2, deleted: 1, unchanged: 2, bytes: 10})
      const after = await snapshotDst()
      expect(after).not.to.have.property('/dst/b.txt')
      expect(after).to.have.property('/dst/sub/new.txt')
      expect(after['/dst/a.txt']).not.to.equal(before['/dst/a.txt'])
      for (const same of ['/dst/sub/c.txt', '/dst/sub/deep/d.txt']) expect(after[same]).to.equal(before[same])
      const content = await cli('cat', `${dst}/a.txt`)
      expect(content.stdout).to.equal('ALPHA')
      expect((await cli('check', './src', dst)).code).to.equal(0)
      expect(await snapshotFolder(path.join(work, 'src')), 'SRC is never changed').to.deep.equal(srcBefore)
    })

    it('check reports each kind of difference, and --one-way only what SRC has', async () => {
      await json('sync', './src', dst)
      await write('sub/c.txt', 'CHARLIE')
      await write('only-src.txt', 'x')
      await cli('mkdir', `${dst}/only-dst`)
      const both = await cli('check', './src', dst)
      expect(both.code).to.equal(1)
      expect(both.stdout.trim().split('\n')).to.deep.equal(['+ only-src.txt', '- only-dst', '* sub/c.txt'])
      const oneWay = await cli('check', './src', dst, '--one-way')
      expect(oneWay.code).to.equal(1)
      expect(oneWay.stdout.trim().split('\n')).to.deep.equal(['+ only-src.txt', '* sub/c.txt'])
      const report = await json('check', './src', dst)
      expect(report).to.include({identical: false})
      expect(report.differ).to.deep.equal(['sub/c.txt'])
    })

    it('an interrupted sync, run again, finishes the job', async () => {
      for (let i = 0; i < 150; i++) await write(`many/f${String(i).padStart(3, '0')}.bin`, `file ${i} `.repeat(200))
      const child = spawnCli(['sync', './src', dst, '--transfers', '1', '-v'], {env, cwd: work})
      const done = collect(child)
      // Kill it once some files are across (the verbose log names each copy).
      let log = ''
      await new Promise<void>((resolve) => {
        child.stderr?.on('data', (chunk: Buffer) => {
          log += chunk.toString()
          if ((log.match(/^copy /gm) ?? []).length >= 20) resolve()
        })
        child.once('exit', () => resolve())
      })
      child.kill('SIGKILL')
      const killed = await done
      expect(killed.signal, 'killed mid-way').to.equal('SIGKILL')
      expect((await cli('check', './src', dst)).code, 'not finished yet').to.equal(1)
      const rerun = await json('sync', './src', dst)
      expect(rerun.copied).to.be.greaterThan(0).and.lessThan(154)
      expect(rerun.unchanged).to.be.greaterThan(0)
      const check = await cli('check', './src', dst)
      expect(check.code, check.stdout).to.equal(0)
    })
  })
}

describe('sync and check between two folders of this machine', function () {
  this.timeout(60_000)
  let work: string
  const cli = (...args: string[]) => runCli(args, {env: {HOME: work}, cwd: path.join(work, 'here')})

  beforeEach(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-sync-folders-'))
    await fs.mkdir(path.join(work, 'here/src/x'), {recursive: true})
    await fs.writeFile(path.join(work, 'here/src/x/one.txt'), 'one')
    await fs.writeFile(path.join(work, 'here/src/two.txt'), 'two')
  })

  afterEach(async () => {
    await fs.rm(work, {recursive: true, force: true})
  })

  it('accepts ./rel, ../rel and file:/abs, and replaces a directory that is in the way of a file', async () => {
    const target = path.join(work, 'there')
    await fs.mkdir(path.join(target, 'two.txt'), {recursive: true})
    await fs.writeFile(path.join(target, 'two.txt/inner'), 'in the way')
    const result = await cli('sync', './src', `file:${target}`, '--json')
    expect(result.code, result.stderr).to.equal(0)
    expect(JSON.parse(result.stdout)).to.deep.equal({copied: 2, deleted: 1, unchanged: 0, bytes: 6})
    expect(await fs.readFile(path.join(target, 'two.txt'), 'utf8')).to.equal('two')
    expect(await fs.readFile(path.join(target, 'x/one.txt'), 'utf8')).to.equal('one')
    const check = await cli('check', './src', '../there')
    expect(check.code, check.stdout + check.stderr).to.equal(0)
  })

  it('refuses a destination inside the source (exit 2)', async () => {
    const result = await cli('sync', './src', './src/x')
    expect(result.code).to.equal(2)
    expect(result.stderr).to.match(/^Error: cannot sync .*one is inside the other\n$/)
  })

  it('refuses a destination that is a file (exit 2), leaving it as it was', async () => {
    await fs.writeFile(path.join(work, 'here/file.txt'), 'keep me')
    const result = await cli('sync', './src', './file.txt')
    expect(result.code).to.equal(2)
    expect(result.stderr).to.match(/^Error: cannot sync to .*file\.txt: it is a file, not a directory\n$/)
    expect(await fs.readFile(path.join(work, 'here/file.txt'), 'utf8')).to.equal('keep me')
  })
})
