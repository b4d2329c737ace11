import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'

import {TestCluster} from '../helpers/cluster.js'
import {runCli} from '../helpers/cli.js'
import {defaultPieceLength} from '../../src/torrent/index.js'
import {makeFile, tempDir} from './helpers.js'

/**
 * An independent reader of .torrent files: its own bencode parser (not our
 * code, not the bencode package), the SHA-1 of the info dictionary's raw
 * bytes, and every piece hash checked against the content files given.
 */
const PYTHON_CHECK = String.raw`
import hashlib, json, sys
data = open(sys.argv[1], 'rb').read()
def parse(i):
    c = data[i:i+1]
    if c == b'i':
        e = data.index(b'e', i)
        return int(data[i+1:e]), e + 1
    if c == b'l':
        i += 1; out = []
        while data[i:i+1] != b'e':
            v, i = parse(i); out.append(v)
        return out, i + 1
    if c == b'd':
        i += 1; out = {}; spans = {}
        while data[i:i+1] != b'e':
            k, i = parse(i); s = i; v, i = parse(i); out[k] = v; spans[k] = (s, i)
        out[b'__spans__'] = spans
        return out, i + 1
    colon = data.index(b':', i); n = int(data[i:colon])
    return data[colon+1:colon+1+n], colon + 1 + n
top, end = parse(0)
assert end == len(data)
s, e = top[b'__spans__'][b'info']
info = top[b'info']
files = [{'path': [p.decode() for p in f[b'path']], 'length': f[b'length']} for f in info[b'files']] if b'files' in info else None
content = b''.join(open(p, 'rb').read() for p in sys.argv[2:])
plen = info[b'piece length']
hashes = [info[b'pieces'][k:k+20] for k in range(0, len(info[b'pieces']), 20)]
ok = len(hashes) == -(-len(content) // plen) and all(hashlib.sha1(content[k*plen:(k+1)*plen]).digest() == h for k, h in enumerate(hashes))
print(json.dumps({'infoHash': hashlib.sha1(data[s:e]).hexdigest(), 'name': info[b'name'].decode(), 'length': info.get(b'length'), 'files': files,
  'pieceLength': plen, 'pieces': len(hashes), 'piecesOk': ok, 'announce': top.get(b'announce', b'').decode()}))
`

interface PythonView {
  infoHash: string
  name: string
  length: number | null
  files: Array<{path: string[]; length: number}> | null
  pieceLength: number
  pieces: number
  piecesOk: boolean
  announce: string
}

function pythonView(torrent: string, content: string[]): PythonView {
  const result = spawnSync('python3', ['-c', PYTHON_CHECK, torrent, ...content], {encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`python3 check failed: ${result.stderr}`)
  return JSON.parse(result.stdout) as PythonView
}

function ariaShow(torrent: string): string {
  const result = spawnSync('aria2c', ['-S', torrent], {encoding: 'utf8'})
  expect(result.status, result.stderr).to.equal(0)
  return result.stdout
}

describe('torrent create', function () {
  this.timeout(60_000)
  let work: string
  const tracker = 'http://127.0.0.1:6969/announce'

  before(async () => {
    work = await tempDir('disk-client-create-')
    await makeFile(path.join(work, 'one.bin'), 3_000_017, 'create-one')
    await makeFile(path.join(work, 'album', 'cd1', 'a.flac'), 100_003, 'create-a')
    await makeFile(path.join(work, 'album', 'b.txt'), 70_000, 'create-b')
    await fs.writeFile(path.join(work, 'album', 'cd1', 'empty'), '')
    await makeFile(path.join(work, 'album', 'cd2', 'c.bin'), 16_384, 'create-c')
  })

  after(async () => {
    await fs.rm(work, {recursive: true, force: true})
  })

  it('makes a single-file torrent whose info-hash an independent decoder agrees with, and aria2c lists it', async () => {
    const out = path.join(work, 'one.torrent')
    const result = await runCli(['torrent', 'create', path.join(work, 'one.bin'), '-o', out, '--tracker', tracker])
    expect(result.code, result.stderr).to.equal(0)
    const [hashLine, magnet] = result.stdout.trim().split('\n')
    const hash = /^infohash ([0-9a-f]{40})$/.exec(hashLine)?.[1]
    expect(hash, hashLine).to.be.a('string')
    expect(magnet).to.equal(`magnet:?xt=urn:btih:${hash}&dn=one.bin&tr=${encodeURIComponent(tracker)}`)

    const view = pythonView(out, [path.join(work, 'one.bin')])
    expect(view).to.deep.include({infoHash: hash, name: 'one.bin', length: 3_000_017, files: null, pieceLength: 16_384, pieces: 184, piecesOk: true, announce: tracker})

    const listing = ariaShow(out)
    expect(listing).to.include(`Info Hash: ${hash}`)
    expect(listing).to.include('Name: one.bin')
    expect(listing).to.match(/Total Length: [0-9.]+MiB \(3,000,017\)/)
    expect(listing).to.include('Mode: single')
  })

  it('makes a multi-file torrent of a folder, files in byte order, empty files included', async () => {
    const out = path.join(work, 'album.torrent')
    const result = await runCli(['torrent', 'create', path.join(work, 'album'), '-o', out, '--piece-length', '32768', '--json'])
    expect(result.code, result.stderr).to.equal(0)
    const json = JSON.parse(result.stdout) as {infoHash: string; magnet: string; pieces: number; pieceLength: number; size: number}
    const size = 100_003 + 70_000 + 16_384
    expect(json).to.deep.include({pieceLength: 32_768, size, pieces: Math.ceil(size / 32_768)})
    expect(json.magnet).to.equal(`magnet:?xt=urn:btih:${json.infoHash}&dn=album`)

    const order = ['b.txt', 'cd1/a.flac', 'cd1/empty', 'cd2/c.bin']
    const view = pythonView(out, order.map((file) => path.join(work, 'album', file)))
    expect(view.infoHash).to.equal(json.infoHash)
    expect(view.piecesOk).to.equal(true)
    expect(view.files).to.deep.equal([
      {path: ['b.txt'], length: 70_000},
      {path: ['cd1', 'a.flac'], length: 100_003},
      {path: ['cd1', 'empty'], length: 0},
      {path: ['cd2', 'c.bin'], length: 16_384},
    ])

    const listing = ariaShow(out)
    expect(listing).to.include('Mode: multi')
    expect(listing).to.include('./album/cd1/a.flac')
    expect(listing).to.include(`(${size.toLocaleString('en-US')})`)
  })

  it('names the torrent with --name without changing the content hashes', async () => {
    const out = path.join(work, 'named.torrent')
    const result = await runCli(['torrent', 'create', path.join(work, 'one.bin'), '-o', out, '--name', 'renamed.bin', '--json'])
    expect(result.code, result.stderr).to.equal(0)
    const view = pythonView(out, [path.join(work, 'one.bin')])
    expect(view).to.deep.include({name: 'renamed.bin', infoHash: (JSON.parse(result.stdout) as {infoHash: string}).infoHash, piecesOk: true})
  })

  it('picks a power of two from 16 KiB giving 1,001 to 2,000 pieces for content over 2,000 × 16 KiB', () => {
    expect(defaultPieceLength(1)).to.equal(16_384)
    expect(defaultPieceLength(2000 * 16_384)).to.equal(16_384)
    expect(defaultPieceLength(2000 * 16_384 + 1)).to.equal(32_768)
    expect(defaultPieceLength(64 * 2 ** 20)).to.equal(65_536)
    expect(defaultPieceLength(2 ** 30)).to.equal(2 ** 20)
    for (let size = 2000 * 16_384 + 1; size < 2 ** 42; size = Math.floor(size * 1.37)) {
      const length = defaultPieceLength(size)
      expect(length & (length - 1), `power of two for ${size}`).to.equal(0)
      expect(Math.ceil(size / length)).to.be.within(1001, 2000)
    }
  })

  it('refuses bad input with a one-line error and the right exit code, writing nothing', async () => {
    const out = path.join(work, 'bad.torrent')
    const missing = await runCli(['torrent', 'create', path.join(work, 'nope'), '-o', out])
    expect(missing.code).to.equal(4)
    expect(missing.stderr.trim().split('\n')).to.have.length(1)
    const badLength = await runCli(['torrent', 'create', path.join(work, 'one.bin'), '-o', out, '--piece-length', '10000'])
    expect(badLength.code).to.equal(2)
    expect(badLength.stderr).to.match(/piece length 10000 is not a power of two/)
    await fs.mkdir(path.join(work, 'nothing'), {recursive: true})
    const empty = await runCli(['torrent', 'create', path.join(work, 'nothing'), '-o', out])
    expect(empty.code).to.equal(2)
    expect(empty.stderr).to.match(/holds no files/)
    const noDir = await runCli(['torrent', 'create', path.join(work, 'one.bin'), '-o', path.join(work, 'no', 'such', 'x.torrent')])
    expect(noDir.code).to.equal(3)
    expect(noDir.stderr.trim()).to.match(/^Error: cannot write .*x\.torrent: directory not found/)
    await fs.access(out).then(
      () => expect.fail('a .torrent was written'),
      () => {},
    )
  })

  describe('from the cluster backend', () => {
    let cluster: TestCluster

    before(async function () {
      this.timeout(60_000)
      cluster = await TestCluster.start({servers: 2, replicas: 1})
    })

    after(async () => {
      await cluster?.stop()
    })

    it('reads cluster:/album through the adapter and gives the same info-hash as the local copy', async () => {
      const env = {HOME: work, DISK_CLUSTER: cluster.routerAddress}
      const upload = await runCli(['upload', path.join(work, 'album'), 'cluster:/album'], {env})
      expect(upload.code, upload.stderr).to.equal(0)
      const local = await runCli(['torrent', 'create', path.join(work, 'album'), '-o', path.join(work, 'l.torrent'), '--json'], {env})
      const remote = await runCli(['torrent', 'create', 'cluster:/album', '-o', path.join(work, 'r.torrent'), '--json'], {env})
      expect(remote.code, remote.stderr).to.equal(0)
      const {infoHash} = JSON.parse(remote.stdout) as {infoHash: string}
      expect(infoHash).to.equal((JSON.parse(local.stdout) as {infoHash: string}).infoHash)
      const order = ['b.txt', 'cd1/a.flac', 'cd1/empty', 'cd2/c.bin']
      expect(pythonView(path.join(work, 'r.torrent'), order.map((file) => path.join(work, 'album', file)))).to.deep.include({infoHash, piecesOk: true})
    })
  })
})
