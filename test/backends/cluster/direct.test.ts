import {expect} from 'chai'
import {createCipheriv, createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {collect, runCli, spawnCli, type CliResult} from '../../helpers/cli.js'
import {TestCluster} from '../../helpers/cluster.js'
import {RespClient} from '../../../src/kv/client.js'
import {pieceSizeFor} from '../../../src/backends/cluster/manifest.js'

const MiB = 1024 * 1024
const PIECE_DB = 2

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** `bytes` of seeded pseudo-random content (AES-256-CTR over zeros): the same seed, the same file. */
async function seededFile(file: string, bytes: number, seed: string): Promise<string> {
  const key = createHash('sha256').update(seed).digest()
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(4 * MiB)
  const handle = await fs.open(file, 'w')
  try {
    for (let written = 0; written < bytes; written += zeros.length) await handle.write(cipher.update(zeros.subarray(0, Math.min(zeros.length, bytes - written))))
  } finally {
    await handle.close()
  }

  return sha256File(file)
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

describe('pieces go straight between the CLI and the servers (3 servers, RF=2)', function () {
  this.timeout(300_000)
  let cluster: TestCluster
  let work: string
  let env: NodeJS.ProcessEnv
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, {env, cwd: work})

  /** How many servers hold each live piece, read from the servers themselves. */
  async function pieceCopies(): Promise<Map<string, number>> {
    const copies = new Map<string, number>()
    for (let i = 0; i < cluster.options.servers; i++) {
      for (const key of await cluster.serverKeys(i, PIECE_DB)) copies.set(key, (copies.get(key) ?? 0) + 1)
    }

    return copies
  }

  /** Downloads `remote` with each server SIGKILLed in turn (and restarted after), checking the content every time. */
  async function downloadWithEachServerDown(remote: string, want: string, except: number[] = []): Promise<void> {
    for (let down = 0; down < cluster.options.servers; down++) {
      if (except.includes(down)) continue
      await cluster.killServer(down)
      const local = `down${down}-${path.basename(remote)}`
      const result = await cli('download', remote, local)
      expect(result.code, `with server ${down} down: ${result.stderr}`).to.equal(0)
      expect(await sha256File(path.join(work, local)), `with server ${down} down`).to.equal(want)
      await fs.rm(path.join(work, local))
      await cluster.startServer(down)
      await cluster.waitUntilUp(cluster.options.servers)
    }
  }

  before(async () => {
    cluster = await TestCluster.start({servers: 3, replicas: 2, antiEntropyMs: 2000})
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-direct-'))
    env = {HOME: work, DISK_CLUSTER: cluster.routerAddress}
  })

  after(async () => {
    await cluster?.stop()
    await fs.rm(work, {recursive: true, force: true})
  })

  it('moves less than 5% of a 256 MiB upload and download through the router', async () => {
    const size = 256 * MiB
    const want = await seededFile(path.join(work, 'big.bin'), size, 'direct-256')
    const before = await cluster.stats()
    const up = await cli('upload', 'big.bin', '/big.bin')
    expect(up.code, up.stderr).to.equal(0)
    const afterUpload = await cluster.stats()
    const down = await cli('download', '/big.bin', 'back.bin')
    expect(down.code, down.stderr).to.equal(0)
    expect(await sha256File(path.join(work, 'back.bin'))).to.equal(want)
    await fs.rm(path.join(work, 'back.bin'))
    const afterDownload = await cluster.stats()

    const uploadThroughRouter = afterUpload.in - before.in + afterUpload.out - before.out
    const downloadThroughRouter = afterDownload.in - afterUpload.in + afterDownload.out - afterUpload.out
    expect(uploadThroughRouter, 'piece bytes through the router on upload').to.be.below(0.05 * size)
    expect(downloadThroughRouter, 'piece bytes through the router on download').to.be.below(0.05 * size)
    const copies = await pieceCopies()
    // Large files are cut into 4 MiB pieces (manifest.ts).
    expect(copies.size).to.equal(size / pieceSizeFor(size))
    expect([...copies.values()].every((n) => n === 2), 'every piece on two servers').to.equal(true)
    // Both copies of each piece hold the same version (the client proposes
    // one per piece), so anti-entropy has nothing to copy after an upload.
    const versions = new Map<string, number[]>()
    for (let i = 0; i < cluster.options.servers; i++) {
      for (const [key, version] of await cluster.serverVersions(i, PIECE_DB)) versions.set(key, [...(versions.get(key) ?? []), version])
    }

    const differing = [...versions].filter(([, held]) => held.some((version) => version !== held[0]))
    expect(differing, 'pieces whose two copies hold different versions').to.deep.equal([])
    // Two whole anti-entropy rounds after the upload copied nothing.
    const rounds = afterDownload.antiEntropyRounds
    await until('two anti-entropy rounds', async () => (await cluster.stats()).antiEntropyRounds >= rounds + 2)
    expect((await cluster.stats()).antiEntropyKeysCopied - before.antiEntropyKeysCopied, 'keys anti-entropy copied').to.equal(0)
  })

  it('downloads many different files at once byte-exact, though their pieces share recycled read buffers', async () => {
    // Sizes around and off the 1 MiB piece size, so buffers of several lengths are handed out and taken back.
    const sizes = [5 * MiB + 17, 3 * MiB, 1, 2 * MiB - 1, 7 * MiB + 4096, 300 * 1024, 4 * MiB + 1, 6 * MiB - 3, 1 * MiB, 9 * MiB + 123]
    const want = new Map<string, string>()
    await fs.mkdir(path.join(work, 'many'))
    for (const [i, size] of sizes.entries()) want.set(`f${i}.bin`, await seededFile(path.join(work, 'many', `f${i}.bin`), size, `many-${i}`))
    const up = await cli('upload', 'many', '/many')
    expect(up.code, up.stderr).to.equal(0)
    for (let round = 0; round < 3; round++) {
      const local = `many-back${round}`
      const down = await cli('download', '/many', local, '--transfers', '8')
      expect(down.code, down.stderr).to.equal(0)
      for (const [name, hash] of want) expect(await sha256File(path.join(work, local, name)), `${name}, round ${round}`).to.equal(hash)
      await fs.rm(path.join(work, local), {recursive: true})
    }
  })

  it('finishes an upload with a server SIGKILLed in the middle, refills that server when it returns, and downloads with each server down in turn', async () => {
    const want = await seededFile(path.join(work, 'killed.bin'), 96 * MiB, 'direct-kill')
    const piecesBefore = (await pieceCopies()).size
    const victim = 1
    const child = spawnCli(['upload', 'killed.bin', '/killed.bin'], {env, cwd: work})
    const done = collect(child)
    const startKeys = (await cluster.serverKeys(victim, PIECE_DB)).length
    await until('the upload stored pieces on the victim', async () => child.exitCode !== null || (await cluster.serverKeys(victim, PIECE_DB)).length >= startKeys + 8)
    expect(child.exitCode, 'the upload ended before a server could be killed').to.equal(null)
    await cluster.killServer(victim)
    const result = await done
    expect(result.code, result.stderr).to.equal(0)

    await cluster.startServer(victim)
    await cluster.waitUntilUp(cluster.options.servers)
    await until('every piece is on two servers again', async () => [...(await pieceCopies()).values()].every((n) => n === 2))
    expect((await pieceCopies()).size).to.equal(piecesBefore + (96 * MiB) / pieceSizeFor(96 * MiB))
    await downloadWithEachServerDown('/killed.bin', want)
  })

  it('reads a piece written while one replica was down from that replica after it returns and the other dies', async () => {
    const want = await seededFile(path.join(work, 'hinted.bin'), 24 * MiB, 'direct-hint')
    await cluster.killServer(0)
    await cluster.waitUntilUp(cluster.options.servers - 1)
    const up = await cli('upload', 'hinted.bin', '/hinted.bin')
    expect(up.code, up.stderr).to.equal(0)
    await cluster.startServer(0)
    await cluster.waitUntilUp(cluster.options.servers)
    await until('the router delivered its hints', async () => (await cluster.info()).hints_pending === '0')
    // Server 0 holds its share only through hints; each other server dies in
    // turn, so every piece that server 0 shares must come from it.
    await downloadWithEachServerDown('/hinted.bin', want, [0])
  })

  it("downloads byte-exact when one replica's copies are damaged: each bad copy is left out of the file's hash, the other replica's used", async () => {
    const size = 40 * MiB + 123
    const file = path.join(work, 'damaged.bin')
    const want = await seededFile(file, size, 'direct-damaged')
    const up = await cli('upload', 'damaged.bin', '/damaged.bin')
    expect(up.code, up.stderr).to.equal(0)
    // This file's piece hashes, from its content (pieces are named by their SHA-256).
    const content = await fs.readFile(file)
    const pieceSize = pieceSizeFor(size)
    const names = new Set<string>()
    for (let at = 0; at < size; at += pieceSize) names.add(createHash('sha256').update(content.subarray(at, at + pieceSize)).digest('hex'))
    // Flip a byte in every copy of them server 0 holds (a blob file holds a piece's bytes as they are): same length, wrong content.
    const blobs = path.join(cluster.dataDir, 'server0', 'blobs')
    const sizes = new Set([pieceSize, size % pieceSize])
    const damaged: Array<{file: string; at: number}> = []
    for (const folder of await fs.readdir(blobs)) {
      for (const name of await fs.readdir(path.join(blobs, folder))) {
        const blob = path.join(blobs, folder, name)
        if (!sizes.has((await fs.stat(blob)).size)) continue
        const data = await fs.readFile(blob)
        if (!names.has(createHash('sha256').update(data).digest('hex'))) continue
        const at = data.length >> 1
        data[at] ^= 0x5a
        await fs.writeFile(blob, data)
        damaged.push({file: blob, at})
      }
    }

    // RF=2 on 3 servers: server 0 holds about two thirds of the pieces, and is asked first for a third of them.
    expect(damaged.length, 'damaged copies').to.be.at.least(3)
    try {
      const down = await cli('download', '/damaged.bin', 'damaged-back.bin')
      expect(down.code, down.stderr).to.equal(0)
      expect(await sha256File(path.join(work, 'damaged-back.bin'))).to.equal(want)
      // The stream path too (cat: pieces in order to stdout).
      const cat = spawnCli(['cat', '/damaged.bin'], {env, cwd: work, stdio: ['ignore', 'pipe', 'pipe']})
      const catHash = createHash('sha256')
      cat.stdout!.on('data', (chunk: Buffer) => catHash.update(chunk))
      let catErr = ''
      cat.stderr!.on('data', (chunk: Buffer) => (catErr += chunk.toString()))
      const code = await new Promise<number | null>((resolve) => cat.once('close', resolve))
      expect(code, catErr).to.equal(0)
      expect(catHash.digest('hex')).to.equal(want)
    } finally {
      for (const {file: blob, at} of damaged) {
        const data = await fs.readFile(blob)
        data[at] ^= 0x5a
        await fs.writeFile(blob, data)
      }
    }
  })
})

describe('cluster server --fsync', function () {
  this.timeout(60_000)
  let dir: string
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-fsync-'))
  })
  after(() => fs.rm(dir, {recursive: true, force: true}))

  /** Starts an unattached-enough server (its router is a closed port) and returns it with its address. */
  async function startServer(mode: string, data: string) {
    const child = spawnCli(['cluster', 'server', '--router', '127.0.0.1:1', '--number', '0', '--port', '0', '--data-dir', data, '--fsync', mode])
    const address = await new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        const match = /listening tcp (\S+)/.exec(out)
        if (match) resolve(match[1])
      })
      child.once('exit', (code) => reject(new Error(`server exited ${code}`)))
    })
    const [host, port] = address.split(':')
    return {child, client: await RespClient.connect({host, port: Number(port)})}
  }

  for (const mode of ['periodic', 'always']) {
    it(`loses no acknowledged piece when the server is SIGKILLed (--fsync ${mode})`, async () => {
      const data = path.join(dir, mode)
      const piece = Buffer.alloc(300 * 1024, mode)
      const first = await startServer(mode, data)
      expect(String(await first.client.call('XPUT', '2:p:one', piece))).to.equal('OK')
      const gone = new Promise((resolve) => first.child.once('exit', resolve))
      first.child.kill('SIGKILL')
      await gone
      first.client.close()
      const second = await startServer(mode, data)
      try {
        const back = await second.client.call('GET', '2:p:one')
        expect(Buffer.isBuffer(back) && back.equals(piece)).to.equal(true)
      } finally {
        second.client.close()
        second.child.kill('SIGTERM')
        await new Promise((resolve) => second.child.once('exit', resolve))
      }
    })
  }

  it('takes the version a client proposes with XPUT only when it is newer than what is held and not far ahead', async () => {
    const server = await startServer('periodic', path.join(dir, 'proposed'))
    const version = async (key: string): Promise<number> => Number(((await server.client.call('XVER', key)) as unknown[])[0])
    try {
      const piece = Buffer.alloc(100 * 1024, 'v')
      const now = Date.now() * 1024
      // A new key: the proposal is taken as it is.
      expect(String(await server.client.call('XPUT', '2:p:new', piece, String(now)))).to.equal('OK')
      expect(await version('2:p:new')).to.equal(now)
      // Not newer than what is held: the server's own, newer version.
      expect(String(await server.client.call('XPUT', '2:p:new', piece, String(now - 5)))).to.equal('OK')
      expect(await version('2:p:new')).to.be.above(now)
      // Equal to what is held: again the server's own, newer version.
      const held = await version('2:p:new')
      expect(String(await server.client.call('XPUT', '2:p:new', piece, String(held)))).to.equal('OK')
      expect(await version('2:p:new')).to.be.above(held)
      // Far ahead of the server's clock (an hour): ignored, so one client cannot drag the clocks along.
      const far = (Date.now() + 3_600_000) * 1024
      expect(String(await server.client.call('XPUT', '2:p:far', piece, String(far)))).to.equal('OK')
      expect(await version('2:p:far')).to.be.below(far)
      // Not a version at all: refused, nothing stored.
      const refused = await server.client.call('XPUT', '2:p:bad', piece, 'soon').then(
        () => 'stored',
        (error: Error) => error.message,
      )
      expect(refused).to.match(/version/)
      expect(await server.client.call('XVER', '2:p:bad')).to.equal(null)
    } finally {
      server.client.close()
      server.child.kill('SIGTERM')
      await new Promise((resolve) => server.child.once('exit', resolve))
    }
  })

  it('refuses an unknown mode with a one-line error', async () => {
    const result = await runCli(['cluster', 'server', '--router', '127.0.0.1:1', '--number', '0', '--data-dir', path.join(dir, 'bad'), '--fsync', 'sometimes'])
    expect(result.code).to.equal(2)
    expect(result.stderr).to.match(/always|periodic/)
  })
})
