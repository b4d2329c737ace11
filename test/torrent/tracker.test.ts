import {expect} from 'chai'
import {createHash} from 'node:crypto'
import {createSocket} from 'node:dgram'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'

import {bdecode, bencode, encodeTorrent, parseTorrent, TrackerServer} from '../../src/torrent/index.js'
import {runCli} from '../helpers/cli.js'
import {killAll, prngStream, startTracker, tempDir, waitFor} from './helpers.js'
import {compactPeers, type Dict, httpAnnounce, query, request, UdpTrackerClient} from './tracker-client.js'

const id20 = (text: string): Buffer => createHash('sha1').update(text).digest()

/** The message a promise rejects with; fails the test when it resolves. */
async function failure(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: Error) => error.message,
  )
}

function torrentBytes(name: string, announce: string[] = []): Buffer {
  const info = bencode({name, 'piece length': 16_384, length: 20_000, pieces: Buffer.concat([id20(name + '0'), id20(name + '1')])})
  return encodeTorrent(info, announce)
}

describe('torrent tracker', function () {
  this.timeout(30_000)
  let tracker: TrackerServer
  let announceUrl: string
  let base: string

  beforeEach(async () => {
    tracker = new TrackerServer({port: 0, interval: 30})
    await tracker.start()
    announceUrl = tracker.announceUrl
    base = new URL(announceUrl).origin
  })

  afterEach(async () => {
    await tracker.stop()
  })

  const hash = id20('torrent-a')
  const seeder = {info_hash: hash, peer_id: id20('peer-seed'), port: 6881, uploaded: 0, downloaded: 0, left: 0}
  const leecher = {info_hash: hash, peer_id: id20('peer-leech'), port: 6882, uploaded: 0, downloaded: 0, left: 1000}

  it('answers compact and dictionary announces, lists peers at their connecting address and never the asker itself', async () => {
    const first = await httpAnnounce(announceUrl, {...seeder, event: 'started', compact: 1}, '127.0.0.21')
    expect(first).to.deep.include({interval: 30, complete: 1, incomplete: 0})
    expect(compactPeers(first.peers as Buffer)).to.deep.equal([])

    const second = await httpAnnounce(announceUrl, {...leecher, event: 'started', compact: 1}, '127.0.0.22')
    expect(second).to.deep.include({interval: 30, complete: 1, incomplete: 1})
    expect(compactPeers(second.peers as Buffer)).to.deep.equal(['127.0.0.21:6881'])

    const dict = await httpAnnounce(announceUrl, seeder, '127.0.0.21')
    expect(dict.peers).to.deep.equal([{ip: Buffer.from('127.0.0.22'), port: 6882, 'peer id': leecher.peer_id}])

    const noIds = await httpAnnounce(announceUrl, {...seeder, no_peer_id: 1}, '127.0.0.21')
    expect(noIds.peers).to.deep.equal([{ip: Buffer.from('127.0.0.22'), port: 6882}])
  })

  it('lists a peer at its ip parameter when it sends one, and honours numwant', async () => {
    await httpAnnounce(announceUrl, {...seeder, ip: '127.0.0.99', event: 'started'}, '127.0.0.21')
    await httpAnnounce(announceUrl, {...leecher, event: 'started'}, '127.0.0.22')
    const third = {...leecher, peer_id: id20('peer-third'), port: 6883}
    const all = await httpAnnounce(announceUrl, {...third, compact: 1}, '127.0.0.23')
    expect(compactPeers(all.peers as Buffer).sort()).to.deep.equal(['127.0.0.22:6882', '127.0.0.99:6881'])
    const one = await httpAnnounce(announceUrl, {...third, compact: 1, numwant: 1}, '127.0.0.23')
    expect(compactPeers(one.peers as Buffer)).to.have.length(1)
  })

  it('answers malformed announces with a bencoded failure reason and HTTP 200', async () => {
    const cases: Array<[string, string]> = [
      ['', 'missing info_hash'],
      [query({...seeder, info_hash: Buffer.from('short')}), 'invalid info_hash: 5 bytes, not 20'],
      [query({...seeder, peer_id: undefined}), 'missing peer_id'],
      [query({...seeder, port: undefined}), 'missing port'],
      [query({...seeder, port: 0}), 'invalid port'],
      [query({...seeder, port: 70_000}), 'invalid port'],
      [query({...seeder, port: 'x'}), 'invalid port'],
      [query({...seeder, left: '1.5'}), 'invalid left'],
      [query({...seeder, event: 'paused'}), 'invalid event'],
      [query({...seeder, ip: 'not-an-ip'}), 'invalid ip'],
      [query(seeder) + '&info_hash=%zz', 'malformed percent-escape'],
    ]
    for (const [text, reason] of cases) {
      const reply = await request(`${announceUrl}?${text}`)
      expect(reply.status, text).to.equal(200)
      const body = bdecode(reply.body) as Dict
      expect(Object.keys(body), text).to.deep.equal(['failure reason'])
      expect((body['failure reason'] as Buffer).toString(), text).to.include(reason)
    }
    const scrape = await request(`${base}/scrape?info_hash=abc`)
    expect((bdecode(scrape.body) as Dict)['failure reason']!.toString()).to.include('invalid info_hash')
    // Nothing malformed was counted: the first good announce finds an empty swarm.
    expect(await httpAnnounce(announceUrl, {...seeder, compact: 1})).to.deep.include({complete: 1, incomplete: 0, peers: Buffer.alloc(0)})
  })

  it('counts completed and stopped events, and scrapes with and without info_hash', async () => {
    const other = id20('torrent-b')
    await httpAnnounce(announceUrl, {...leecher, event: 'started'}, '127.0.0.22')
    await httpAnnounce(announceUrl, {...leecher, left: 0, event: 'completed'}, '127.0.0.22')
    await httpAnnounce(announceUrl, {...seeder, event: 'started'}, '127.0.0.21')
    await httpAnnounce(announceUrl, {...leecher, info_hash: other, event: 'started'}, '127.0.0.22')

    const scrape = async (params: string): Promise<Map<string, Dict>> => {
      const reply = await request(`${base}/scrape${params}`)
      expect(reply.status).to.equal(200)
      const files = (bdecode(reply.body) as Dict).files as Dict
      return new Map(Object.entries(files).map(([key, value]) => [Buffer.from(key, 'latin1').toString('hex'), value as Dict]))
    }
    const both = await scrape(`?${query({info_hash: hash})}&${query({info_hash: other})}`)
    expect([...both.keys()]).to.have.length(2)
    expect(both.get(hash.toString('hex'))).to.deep.equal({complete: 2, downloaded: 1, incomplete: 0})
    expect(both.get(other.toString('hex'))).to.deep.equal({complete: 0, downloaded: 0, incomplete: 1})
    const unknown = await scrape(`?${query({info_hash: id20('nobody')})}`)
    expect(unknown.get(id20('nobody').toString('hex'))).to.deep.equal({complete: 0, downloaded: 0, incomplete: 0})
    const everything = await scrape('')
    expect([...everything.keys()].sort()).to.deep.equal([hash.toString('hex'), other.toString('hex')].sort())

    const stopped = await httpAnnounce(announceUrl, {...seeder, event: 'stopped'}, '127.0.0.21')
    expect(stopped).to.deep.include({complete: 1, incomplete: 0})
    const after = await httpAnnounce(announceUrl, {...leecher, compact: 1}, '127.0.0.22')
    expect(compactPeers(after.peers as Buffer)).to.deep.equal([])
  })

  it('drops a peer silent for 2 × interval within a few seconds, and keeps one that re-announces', async () => {
    await tracker.stop()
    tracker = new TrackerServer({port: 0, interval: 1})
    await tracker.start()
    announceUrl = tracker.announceUrl
    const silent = {...leecher, peer_id: id20('silent')}
    const started = Date.now()
    await httpAnnounce(announceUrl, {...silent, event: 'started'}, '127.0.0.23')
    await httpAnnounce(announceUrl, {...seeder, event: 'started'}, '127.0.0.21')
    let seen: string[] = []
    await waitFor(
      async () => {
        // The seeder re-announces (as a client does every interval); the silent peer does not.
        const reply = await httpAnnounce(announceUrl, {...seeder, compact: 1}, '127.0.0.21')
        seen = compactPeers(reply.peers as Buffer)
        return seen.length === 0
      },
      'the silent peer to be dropped',
      10_000,
      200,
    )
    const elapsed = Date.now() - started
    expect(elapsed).to.be.within(2000, 6000)
    const reply = await httpAnnounce(announceUrl, {...leecher, peer_id: id20('late'), compact: 1}, '127.0.0.24')
    expect(compactPeers(reply.peers as Buffer)).to.deep.equal(['127.0.0.21:6881'])
  })

  describe('UDP (BEP 15)', () => {
    let client: UdpTrackerClient

    beforeEach(async () => {
      client = await UdpTrackerClient.open('127.0.0.1', tracker.boundPort, '127.0.0.31')
    })

    afterEach(() => client.close())

    it('connects, announces into the same swarm as HTTP peers, and scrapes', async () => {
      await httpAnnounce(announceUrl, {...seeder, event: 'started'}, '127.0.0.21')
      const id = await client.connect()
      expect(id).to.have.length(8)
      const reply = await client.announce(id, {infoHash: hash, peerId: leecher.peer_id, left: 500, event: 2, port: 7000})
      expect(reply).to.deep.equal({interval: 30, leechers: 1, seeders: 1, peers: ['127.0.0.21:6881']})
      const http = await httpAnnounce(announceUrl, {...seeder, compact: 1}, '127.0.0.21')
      expect(compactPeers(http.peers as Buffer)).to.deep.equal(['127.0.0.31:7000'])

      const done = await client.announce(id, {infoHash: hash, peerId: leecher.peer_id, left: 0, event: 1, port: 7000})
      expect(done).to.deep.include({leechers: 0, seeders: 2})
      const withIp = await client.announce(id, {infoHash: hash, peerId: id20('udp-ip'), left: 9, event: 2, port: 7001, ip: '127.0.0.77'})
      expect(withIp.peers.sort()).to.deep.equal(['127.0.0.21:6881', '127.0.0.31:7000'])
      const listed = await httpAnnounce(announceUrl, {...seeder, compact: 1}, '127.0.0.21')
      expect(compactPeers(listed.peers as Buffer)).to.include('127.0.0.77:7001')

      const scraped = await client.scrape(id, [hash, id20('nobody')])
      expect(scraped).to.deep.equal([
        {seeders: 2, completed: 1, leechers: 1},
        {seeders: 0, completed: 0, leechers: 0},
      ])
      await client.announce(id, {infoHash: hash, peerId: leecher.peer_id, left: 0, event: 3, port: 7000})
      expect((await client.scrape(id, [hash]))[0]).to.deep.equal({seeders: 1, completed: 1, leechers: 1})
    })

    it('refuses an unknown connection id, one issued to another address, and one that has expired', async () => {
      expect(await failure(client.announce(Buffer.alloc(8, 1), {infoHash: hash, peerId: leecher.peer_id, left: 1, event: 2, port: 7000}))).to.match(/connection id/)
      const other = await UdpTrackerClient.open('127.0.0.1', tracker.boundPort, '127.0.0.32')
      const foreign = await other.connect()
      other.close()
      expect(await failure(client.scrape(foreign, [hash]))).to.match(/connection id/)

      await tracker.stop()
      tracker = new TrackerServer({port: 0, interval: 30, connectionTtlMs: 1500})
      await tracker.start()
      client.close()
      client = await UdpTrackerClient.open('127.0.0.1', tracker.boundPort, '127.0.0.31')
      const id = await client.connect()
      const issued = Date.now()
      expect((await client.scrape(id, [hash]))[0]).to.deep.equal({seeders: 0, completed: 0, leechers: 0})
      const error = await waitFor(
        () => client.scrape(id, [hash]).then(() => undefined, (failure: Error) => failure.message),
        'the connection id to expire',
        10_000,
        100,
      )
      expect(error).to.match(/expired connection id/)
      expect(Date.now() - issued).to.be.below(3000)
    })

    it('answers malformed requests with an error packet and ignores datagrams that are not ours', async () => {
      const id = await client.connect()
      const shortAnnounce = Buffer.alloc(40)
      id.copy(shortAnnounce, 0)
      shortAnnounce.writeUInt32BE(1, 8)
      shortAnnounce.writeUInt32BE(77, 12)
      const error = await client.exchange(shortAnnounce)
      expect(error?.readUInt32BE(0)).to.equal(3)
      expect(error?.readUInt32BE(4)).to.equal(77)
      expect(error?.subarray(8).toString()).to.match(/shorter than 98/)
      const unknownAction = Buffer.from(shortAnnounce.subarray(0, 16))
      unknownAction.writeUInt32BE(9, 8)
      expect((await client.exchange(unknownAction))?.subarray(8).toString()).to.match(/unknown action 9/)
      const wrongProtocol = Buffer.alloc(16)
      expect(await client.exchange(wrongProtocol, 300)).to.equal(undefined)
      expect(await client.exchange(Buffer.from('hi'), 300)).to.equal(undefined)
    })
  })

  describe('the pool', () => {
    it('registers torrents (201), refuses bad bodies (400), lists, filters by name and serves the files', async () => {
      const a = torrentBytes('alpha.bin', ['http://127.0.0.1:1/announce'])
      const put = await request(`${base}/torrents`, {method: 'PUT', body: a})
      expect(put.status).to.equal(201)
      expect(put.headers['content-type']).to.match(/json/)
      const metaA = parseTorrent(a)
      expect(JSON.parse(put.body.toString())).to.deep.equal({
        infoHash: metaA.infoHashHex,
        name: 'alpha.bin',
        magnet: `magnet:?xt=urn:btih:${metaA.infoHashHex}&dn=alpha.bin&tr=${encodeURIComponent('http://127.0.0.1:1/announce')}`,
      })
      const b = torrentBytes('beta.bin')
      expect((await request(`${base}/torrents`, {method: 'PUT', body: b})).status).to.equal(201)

      for (const body of [Buffer.from('not a torrent'), Buffer.alloc(0), bencode({info: {name: 'x'}})]) {
        const bad = await request(`${base}/torrents`, {method: 'PUT', body})
        expect(bad.status).to.equal(400)
        expect(JSON.parse(bad.body.toString())).to.have.property('error').that.is.a('string').and.not.empty
      }

      await httpAnnounce(announceUrl, {...seeder, info_hash: metaA.infoHash, event: 'started'}, '127.0.0.21')
      await httpAnnounce(announceUrl, {...leecher, info_hash: metaA.infoHash, event: 'started'}, '127.0.0.22')
      await httpAnnounce(announceUrl, {...leecher, info_hash: metaA.infoHash, left: 0, event: 'completed'}, '127.0.0.22')
      await httpAnnounce(announceUrl, {...leecher, peer_id: id20('x'), info_hash: metaA.infoHash, event: 'started'}, '127.0.0.23')

      const list = JSON.parse((await request(`${base}/torrents`)).body.toString()) as Dict[]
      expect(list).to.have.length(2)
      expect(list.find((item) => item.name === 'alpha.bin')).to.deep.equal({
        infoHash: metaA.infoHashHex,
        name: 'alpha.bin',
        size: 20_000,
        pieceLength: 16_384,
        seeders: 2,
        leechers: 1,
        completed: 1,
      })
      const filtered = JSON.parse((await request(`${base}/torrents?name=beta.bin`)).body.toString()) as Dict[]
      expect(filtered.map((item) => item.name)).to.deep.equal(['beta.bin'])
      expect(JSON.parse((await request(`${base}/torrents?name=gamma`)).body.toString())).to.deep.equal([])

      const fileA = await request(`${base}/torrents/${metaA.infoHashHex}.torrent`)
      expect(fileA.status).to.equal(200)
      expect(fileA.body.equals(a)).to.equal(true)
      // A torrent registered without trackers is served with this tracker's announce URL, same info-hash.
      const fileB = parseTorrent((await request(`${base}/torrents/${parseTorrent(b).infoHashHex}.torrent`)).body)
      expect(fileB.infoHashHex).to.equal(parseTorrent(b).infoHashHex)
      expect(fileB.announce).to.deep.equal([announceUrl])
      expect((await request(`${base}/torrents/${'0'.repeat(40)}.torrent`)).status).to.equal(404)
      expect((await request(`${base}/nowhere`)).status).to.equal(404)
      expect((await request(`${base}/torrents`, {method: 'DELETE'})).status).to.equal(405)
    })
  })

  describe('as a process', () => {
    let dataDir: string

    beforeEach(async () => {
      dataDir = await tempDir('disk-client-tracker-')
    })

    afterEach(async () => {
      await killAll()
      await fs.rm(dataDir, {recursive: true, force: true})
    })

    it('keeps the pool and the completion counters in --data-dir across a restart', async () => {
      const first = await startTracker(dataDir, 30)
      expect(first.line).to.match(/^tracker http:\/\/127\.0\.0\.1:\d+\/announce$/)
      const body = torrentBytes('kept.bin', [first.announce])
      const meta = parseTorrent(body)
      expect((await request(`${first.base}/torrents`, {method: 'PUT', body})).status).to.equal(201)
      await httpAnnounce(first.announce, {...leecher, info_hash: meta.infoHash, left: 0, event: 'completed'}, '127.0.0.22')
      await httpAnnounce(first.announce, {...seeder, info_hash: id20('not-pooled'), left: 0, event: 'completed'}, '127.0.0.21')
      const exited = new Promise<number | null>((resolve) => first.child.once('exit', resolve))
      first.child.kill('SIGTERM')
      expect(await exited).to.equal(0)
      expect(first.stderr()).to.match(/stopped/)

      const second = await startTracker(dataDir, 30)
      const list = JSON.parse((await request(`${second.base}/torrents`)).body.toString()) as Dict[]
      expect(list).to.deep.equal([{infoHash: meta.infoHashHex, name: 'kept.bin', size: 20_000, pieceLength: 16_384, seeders: 0, leechers: 0, completed: 1}])
      const served = await request(`${second.base}/torrents/${meta.infoHashHex}.torrent`)
      expect(served.body.equals(body)).to.equal(true)
      const scrape = bdecode((await request(`${second.base}/scrape?${query({info_hash: id20('not-pooled')})}`)).body) as Dict
      expect(Object.values(scrape.files as Dict)[0]).to.deep.include({downloaded: 1})
    })

    it('refuses a port already in use with one line and exit 1', async () => {
      const first = await startTracker(dataDir, 30)
      const port = new URL(first.announce).port
      const second = await runCli(['torrent', 'tracker', '-p', port, '--data-dir', path.join(dataDir, 'other')], {timeoutMs: 20_000})
      expect(second.code).to.equal(1)
      expect(second.stderr.trim().split('\n')).to.deep.equal([`Error: cannot listen on 127.0.0.1:${port}: address in use (EADDRINUSE)`])
      expect(first.child.exitCode).to.equal(null)
    })

    it('survives garbage on its TCP and UDP ports', async () => {
      const server = await startTracker(dataDir, 30)
      const port = Number(new URL(server.announce).port)
      const random = prngStream('tracker-garbage')
      for (let i = 0; i < 20; i++) {
        await new Promise<void>((resolve) => {
          const socket = net.connect({host: '127.0.0.1', port}, () => {
            socket.end(i % 4 === 0 ? Buffer.from('GET /announce?info_hash=%%%\r\n\r\n') : random(1 + (random(1)[0] % 200) * 10))
          })
          socket.on('error', () => resolve())
          socket.on('close', () => resolve())
          socket.resume()
        })
      }
      // A connection that sends half a request and goes away.
      const half = net.connect({host: '127.0.0.1', port}, () => half.write('GET /announce?info_hash='))
      half.on('error', () => {})
      const udp = createSocket('udp4')
      for (let i = 0; i < 200; i++) {
        const length = random(1)[0] % 120
        const packet = random(length)
        if (i % 3 === 0 && length >= 16) packet.writeUInt32BE(random(1)[0] % 5, 8)
        udp.send(packet, port, '127.0.0.1')
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
      udp.close()
      half.destroy()

      expect(server.child.exitCode).to.equal(null)
      const reply = await httpAnnounce(server.announce, {...seeder, event: 'started'}, '127.0.0.21')
      expect(reply).to.deep.include({complete: 1})
      const client = await UdpTrackerClient.open('127.0.0.1', port, '127.0.0.31')
      try {
        const id = await client.connect()
        expect((await client.announce(id, {infoHash: hash, peerId: leecher.peer_id, left: 1, event: 2, port: 7000})).peers).to.deep.equal(['127.0.0.21:6881'])
      } finally {
        client.close()
      }
      expect(server.child.exitCode).to.equal(null)
    })
  })
})
