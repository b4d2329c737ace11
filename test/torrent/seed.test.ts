// `torrent seed` serving real clients: aria2c and Transmission leechers,
// found through our tracker; from a local file and straight from the
// cluster; garbage on its port.
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {expect} from 'chai'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'

import {runCli} from '../helpers/cli.js'
import {
  canConnect,
  createTorrent,
  freePort,
  killAll,
  makeFile,
  nextLoopback,
  sha256File,
  startAria,
  startSeed,
  startTracker,
  tempDir,
  track,
  type Tracker,
  waitFor,
} from './helpers.js'
import {encodeHandshake, encodeMessage} from '../../src/torrent/index.js'

const MiB = 1024 * 1024

describe('torrent seed', function () {
  this.timeout(180_000)
  let dir: string
  let tracker: Tracker
  let big: string
  let bigDigest: string
  let bigTorrent: string

  before(async () => {
    dir = await tempDir()
    tracker = await startTracker(path.join(dir, 'tracker'))
    big = await makeFile(path.join(dir, 'src', 'big.bin'), 64 * MiB, 'seed-64')
    bigDigest = await sha256File(big)
    bigTorrent = await createTorrent(big, path.join(dir, 'big.torrent'), tracker.announce)
  })

  afterEach(async () => {
    await killAll('test')
  })

  after(async () => {
    await killAll()
    await fs.rm(dir, {recursive: true, force: true})
  })

  async function ariaLeech(torrent: string): Promise<string> {
    const out = await tempDir()
    const aria = await startAria(torrent, out, 'get')
    const code = await aria.exited
    expect(code, aria.stdout() + aria.stderr()).to.equal(0)
    return out
  }

  it('serves a 64 MiB file to aria2c, found through our tracker, byte-identical', async () => {
    const seed = await startSeed(bigTorrent, big)
    expect(seed.line).to.match(/^seeding 127\.0\.0\.\d+:\d+ [0-9a-f]{40} big\.bin$/)
    const out = await ariaLeech(bigTorrent)
    expect(await sha256File(path.join(out, 'big.bin'))).to.equal(bigDigest)
  })

  it('serves the same 64 MiB straight from cluster:/path to aria2c', async () => {
    const dataDir = await tempDir()
    const env = {DISK_DATA_DIR: dataDir}
    const upload = await runCli(['upload', big, 'cluster:/big.bin'], {env})
    expect(upload.code, upload.stderr).to.equal(0)
    const seed = await startSeed(bigTorrent, 'cluster:/big.bin', {env})
    expect(seed.line).to.match(/^seeding /)
    // The seeder holds the embedded data dir; a CLI beside it attaches and works.
    const listed = await runCli(['ls', 'cluster:/', '--json'], {env, timeoutMs: 30_000})
    expect(listed.code, listed.stderr).to.equal(0)
    expect(JSON.parse(listed.stdout).map((e: {name: string}) => e.name)).to.deep.equal(['big.bin'])
    const out = await ariaLeech(bigTorrent)
    expect(await sha256File(path.join(out, 'big.bin'))).to.equal(bigDigest)
    await killAll('test')
    await fs.rm(dataDir, {recursive: true, force: true})
  })

  it('refuses data that does not match the piece hashes, with one line and exit 1', async () => {
    const small = await makeFile(path.join(dir, 'src2', 'small.bin'), 300_000, 'seed-small')
    const t = await createTorrent(small, path.join(dir, 'small.torrent'), tracker.announce)
    const wrong = await makeFile(path.join(dir, 'wrong', 'small.bin'), 300_000, 'seed-other')
    const result = await runCli(['torrent', 'seed', t, '--data', wrong, '--host', nextLoopback(), '-p', '0'])
    expect(result.code).to.equal(1)
    expect(result.stdout).to.equal('')
    const lines = result.stderr.trim().split('\n').filter((line) => line.startsWith('Error'))
    expect(lines).to.have.length(1)
    expect(lines[0]).to.match(/does not match the torrent: \d+ of \d+ pieces differ/)
  })

  it('survives garbage on its port and keeps serving', async () => {
    const small = await makeFile(path.join(dir, 'src3', 'g.bin'), 2 * MiB + 5, 'seed-garbage')
    const t = await createTorrent(small, path.join(dir, 'g.torrent'), tracker.announce)
    const meta = (await import('../../src/torrent/index.js')).parseTorrent(await fs.readFile(t))
    const seed = await startSeed(t, small)
    const peerId = Buffer.from('-TT0001-abcdefghijkl')
    const handshake = encodeHandshake(meta.infoHash, peerId)
    const frames = (length: number, id: number) => {
      const buf = Buffer.alloc(5)
      buf.writeUInt32BE(length, 0)
      buf[4] = id
      return buf
    }
    const attacks: Buffer[] = [
      randomBytes(4096),
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      encodeHandshake(randomBytes(20), peerId),
      handshake.subarray(0, 30),
      Buffer.concat([handshake, frames(0xffffffff, 7)]),
      Buffer.concat([handshake, encodeMessage({type: 'interested'}), encodeMessage({type: 'request', index: 99_999, begin: 0, length: 16_384})]),
      Buffer.concat([handshake, encodeMessage({type: 'interested'}), encodeMessage({type: 'request', index: 0, begin: 0, length: 1 << 20})]),
      Buffer.concat([handshake, encodeMessage({type: 'bitfield', bits: Buffer.alloc(3)}), randomBytes(2000)]),
      Buffer.concat([handshake, frames(3, 20), Buffer.from([0, 0x64, 0x65])]),
      Buffer.concat([handshake, encodeMessage({type: 'extended', id: 0, payload: Buffer.from('d1:md11:ut_metadatai3eee')}), encodeMessage({type: 'extended', id: 3, payload: Buffer.from('d8:msg_typei0e5:piecei999eexx')})]),
    ]
    for (const attack of attacks) {
      await new Promise<void>((resolve) => {
        const socket = net.connect({host: seed.host, port: seed.port, localAddress: '127.0.0.250'})
        socket.on('connect', () => socket.end(attack))
        socket.on('data', () => {})
        socket.on('error', () => resolve())
        socket.on('close', () => resolve())
        setTimeout(() => socket.destroy(), 2_000)
      })
    }
    expect(seed.child.exitCode).to.equal(null)
    expect(await canConnect(seed.host, seed.port)).to.equal(true)
    const out = await tempDir()
    const get = await runCli(['torrent', 'get', t, '-o', out, '--host', nextLoopback(), '--timeout', '20000', '--json'], {timeoutMs: 60_000})
    expect(get.code, get.stderr).to.equal(0)
    expect(await sha256File(path.join(out, 'g.bin'))).to.equal(await sha256File(small))
  })

  it('announces stopped on SIGTERM and exits 0', async () => {
    const small = await makeFile(path.join(dir, 'src4', 'stop.bin'), 100_000, 'seed-stop')
    const t = await createTorrent(small, path.join(dir, 'stop.torrent'), tracker.announce)
    const seed = await startSeed(t, small, {extra: ['--publish']})
    const seeders = async (): Promise<number | undefined> => {
      const list = (await (await fetch(`${tracker.base}/torrents?name=stop.bin`)).json()) as Array<{seeders: number}>
      return list[0]?.seeders
    }
    await waitFor(async () => (await seeders()) === 1, 'one seeder in the pool')
    const exited = new Promise<number | null>((resolve) => seed.child.once('exit', (code) => resolve(code)))
    seed.child.kill('SIGTERM')
    expect(await exited).to.equal(0)
    expect(await seeders()).to.equal(0)
  })

  it('serves Transmission, which it dials itself (Transmission never dials loopback peers)', async () => {
    const file = await makeFile(path.join(dir, 'src5', 'tr.bin'), 6 * MiB + 3, 'seed-transmission')
    const t = await createTorrent(file, path.join(dir, 'tr.torrent'), tracker.announce)
    await startSeed(t, file, {extra: ['--max-announce-interval', '1']})
    const host = nextLoopback()
    const rpc = `${host}:${await freePort(host)}`
    const config = await tempDir()
    const out = await tempDir()
    const daemon = track(
      spawn(
        'transmission-daemon',
        ['-f', '-g', config, '-T', '-a', '127.0.0.*', '-r', host, '-p', rpc.split(':')[1], '-P', String(await freePort(host)), '-i', host, '-O', '-Y', '-M', '--no-utp', '-et', '-w', out],
        {stdio: 'ignore'},
      ),
    )
    const remote = async (...args: string[]): Promise<string> => {
      const child = spawn('transmission-remote', [rpc, ...args], {stdio: ['ignore', 'pipe', 'pipe']})
      let text = ''
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()))
      await new Promise((resolve) => child.once('exit', resolve))
      return text
    }
    await waitFor(async () => /success/.test(await remote('-a', t)), 'transmission to take the torrent', 30_000, 300)
    await waitFor(async () => /100%/.test(await remote('-l')), 'transmission to reach 100%', 120_000, 500)
    expect(await sha256File(path.join(out, 'tr.bin'))).to.equal(await sha256File(file))
    expect(daemon.exitCode).to.equal(null)
  })
})
