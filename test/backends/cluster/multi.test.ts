import {expect} from 'chai'
import {createHash, randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {createClusterBackend} from '../../../src/backends/cluster/index.js'
import {pieceSizeFor} from '../../../src/backends/cluster/manifest.js'
import {collect, runCli, spawnCli, type CliResult} from '../../helpers/cli.js'
import {TestCluster} from '../../helpers/cluster.js'
import {describeStorageCompliance} from '../../compliance/storage.js'

let shared: TestCluster | undefined
describeStorageCompliance('cluster (3 servers, RF=2)', async () => {
  shared = await TestCluster.start({servers: 3, replicas: 2})
  const adapter = await createClusterBackend({
    retries: 0,
    retryBaseMs: 1,
    yandexApiUrl: '',
    localRoot: '',
    dataDir: '',
    cluster: shared.routerAddress,
    log: () => {},
  })
  return {adapter, teardown: () => shared!.stop()}
})

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

async function randomFile(file: string, bytes: number): Promise<void> {
  const handle = await fs.open(file, 'w')
  try {
    for (let written = 0; written < bytes; written += 4 << 20) await handle.write(randomBytes(Math.min(4 << 20, bytes - written)))
  } finally {
    await handle.close()
  }
}

describe('files on a 3-server RF=2 cluster, through the CLI', function () {
  this.timeout(180_000)
  let cluster: TestCluster
  let work: string
  let env: NodeJS.ProcessEnv
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, {env, cwd: work})
  const about = async () => JSON.parse((await cli('about', '--json')).stdout)

  before(async () => {
    cluster = await TestCluster.start({servers: 3, replicas: 2})
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-files-'))
    env = {HOME: work, DISK_CLUSTER: cluster.routerAddress}
  })

  after(async () => {
    await cluster?.stop()
    await fs.rm(work, {recursive: true, force: true})
  })

  it('stores the same content twice as one set of pieces', async () => {
    await randomFile(path.join(work, 'dup.bin'), 9 * 1024 * 1024)
    expect((await cli('upload', 'dup.bin', '/dup/one.bin')).code).to.equal(0)
    const before = await about()
    const second = await cli('upload', 'dup.bin', '/dup/two.bin')
    expect(second.code, second.stderr).to.equal(0)
    const after = await about()
    expect(after.pieces).to.equal(before.pieces)
    expect(after.stored).to.equal(before.stored)
    expect(after.used - before.used).to.equal(9 * 1024 * 1024)
    expect(after.dedup_saved - before.dedup_saved).to.equal(9 * 1024 * 1024)
  })

  it("shows the servers' free disk as capacity, counting servers on one filesystem once", async () => {
    const disk = await fs.statfs(cluster.dataDir)
    const shown = await about()
    expect(shown.total).to.equal(disk.blocks * disk.bsize)
    expect(shown.free).to.be.a('number').within(0, shown.total)
    expect(Math.abs(shown.free - disk.bavail * disk.bsize)).to.be.below(256 * 1024 * 1024)
    const text = await cli('about')
    expect(text.stdout).to.match(/free/i)
  })

  it('copies a file server-side without moving piece data', async () => {
    const before = await about()
    const copied = await cli('cp', '/dup/one.bin', '/dup/three.bin', '--json')
    expect(JSON.parse(copied.stdout)).to.include({serverSide: true, type: 'file', files: 1, bytes: 9 * 1024 * 1024})
    const after = await about()
    expect(after.stored).to.equal(before.stored)
    expect(after.used - before.used).to.equal(9 * 1024 * 1024)
  })

  it('shows both of two concurrent uploads into one directory', async () => {
    const names = ['c1', 'c2', 'c3', 'c4']
    for (const name of names) await fs.writeFile(path.join(work, name), `content of ${name}`)
    await cli('mkdir', '/together')
    const results = await Promise.all(names.map((name) => cli('upload', name, `/together/${name}`)))
    for (const result of results) expect(result.code, result.stderr).to.equal(0)
    expect((await cli('ls', '/together')).stdout.trim().split('\n')).to.deep.equal(names)
  })

  it('uploads and downloads 200 MiB byte-identical, even with a server SIGKILLed mid-download', async () => {
    const size = 200 * 1024 * 1024
    await randomFile(path.join(work, 'big.bin'), size)
    const want = await sha256File(path.join(work, 'big.bin'))
    const up = await cli('upload', 'big.bin', '/big.bin')
    expect(up.code, up.stderr).to.equal(0)
    const down = await cli('download', '/big.bin', 'back.bin')
    expect(down.code, down.stderr).to.equal(0)
    expect(await sha256File(path.join(work, 'back.bin'))).to.equal(want)

    const child = spawnCli(['download', '/big.bin', 'again.bin'], {env, cwd: work})
    const done = collect(child)
    const partial = async () => {
      const name = (await fs.readdir(work)).find((n) => n.endsWith('.partial'))
      return name ? (await fs.stat(path.join(work, name)).catch(() => ({size: 0}))).size : 0
    }

    const deadline = Date.now() + 60_000
    while ((await partial()) < 20 * 1024 * 1024 && child.exitCode === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }

    expect(child.exitCode, 'the download ended before a server could be killed').to.equal(null)
    await cluster.killServer(1)
    const result = await done
    expect(result.code, result.stderr).to.equal(0)
    expect(await sha256File(path.join(work, 'again.bin'))).to.equal(want)
    await cluster.startServer(1)
    await cluster.waitUntilUp(3)
  })

  it('finishes an upload through a router SIGKILLed and restarted in the middle of it', async () => {
    await randomFile(path.join(work, 'through.bin'), 96 * 1024 * 1024)
    const want = await sha256File(path.join(work, 'through.bin'))
    const child = spawnCli(['upload', 'through.bin', '/through.bin', '-v'], {env: {...env, DISK_RETRY_BASE_MS: '200'}, cwd: work})
    const done = collect(child)
    const [host, port] = cluster.routerAddress.split(':')
    const {RespClient} = await import('../../../src/kv/client.js')
    const pieces = await RespClient.connect({host, port: Number(port)})
    await pieces.call('SELECT', 2)
    const start = Number(await pieces.call('DBSIZE'))
    const deadline = Date.now() + 60_000
    while (Number(await pieces.call('DBSIZE')) < start + 16 && child.exitCode === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }

    pieces.close()
    expect(child.exitCode, 'the upload ended before the router could be killed').to.equal(null)
    await cluster.killRouter()
    await cluster.startRouter()
    const result = await done
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stderr).to.match(/retrying .*through\.bin/)
    await cluster.waitUntilUp(3)
    // The attempt cut off by the kill may have left its upload intent (the
    // router was gone when it tried to drop it) and pieces: gc reclaims
    // those, and none of the finished file's.
    const gc = await cli('cluster', 'gc', '--settle-ms', '100', '--stale-after-ms', '0', '--json')
    expect(gc.code, gc.stderr).to.equal(0)
    const back = await cli('download', '/through.bin', 'through-back.bin')
    expect(back.code, back.stderr).to.equal(0)
    expect(await sha256File(path.join(work, 'through-back.bin'))).to.equal(want)
  })

  it('keeps every earlier file intact after a CLI SIGKILLed mid-upload and a gc', async () => {
    await fs.writeFile(path.join(work, 'keep.txt'), 'keep me')
    expect((await cli('upload', 'keep.txt', '/safe/keep.txt')).code).to.equal(0)
    expect((await cli('upload', 'keep.txt', '/safe/replaced.txt')).code).to.equal(0)
    await randomFile(path.join(work, 'doomed.bin'), 64 * 1024 * 1024)
    const before = await about()
    const child = spawnCli(['upload', 'doomed.bin', '/safe/replaced.txt', '--overwrite'], {env, cwd: work})
    const done = collect(child)
    const [host, port] = cluster.routerAddress.split(':')
    const {RespClient} = await import('../../../src/kv/client.js')
    const kv = await RespClient.connect({host, port: Number(port)})
    await kv.call('SELECT', 2)
    const deadline = Date.now() + 60_000
    let pieces = Number(await kv.call('DBSIZE'))
    const initial = pieces
    while (pieces < initial + 3 && child.exitCode === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      pieces = Number(await kv.call('DBSIZE'))
    }

    kv.close()
    expect(child.exitCode, 'the upload ended before it could be killed').to.equal(null)
    child.kill('SIGKILL')
    await done
    // A young upload intent might be an upload still running: gc keeps its pieces.
    const cautious = JSON.parse((await cli('cluster', 'gc', '--settle-ms', '100', '--json')).stdout)
    expect(cautious).to.include({piecesFreed: 0, staleIntents: 0})
    // Declared dead, its orphaned pieces go; nothing else does.
    const gc = await cli('cluster', 'gc', '--settle-ms', '100', '--stale-after-ms', '0', '--json')
    expect(gc.code, gc.stderr).to.equal(0)
    const report = JSON.parse(gc.stdout)
    expect(report.staleIntents).to.equal(1)
    expect(report.piecesFreed).to.be.at.least(3)
    expect(report.bytesFreed).to.equal(report.piecesFreed * pieceSizeFor(64 * 1024 * 1024))
    const after = await about()
    expect(after.used).to.equal(before.used)
    for (const name of ['keep.txt', 'replaced.txt']) {
      const got = await cli('download', `/safe/${name}`, `restored-${name}`)
      expect(got.code, got.stderr).to.equal(0)
      expect(await fs.readFile(path.join(work, `restored-${name}`), 'utf8')).to.equal('keep me')
    }
  })
})
