import {expect} from 'chai'
import dgram from 'node:dgram'
import net from 'node:net'
import ntp from 'ntp-time'

import {freePort, getJson, revsOf, sendJson, SiteHarness, type SiteProc} from './helpers.js'

/** A seeded PRNG (mulberry32), so the garbage is the same on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

function bytes(random: () => number, length: number): Buffer {
  return Buffer.from(Array.from({length}, () => Math.floor(random() * 256)))
}

/** Writes `data` on a fresh connection and waits until the server closes it (or 2 s pass, then we do). */
function tcpGarbage(port: number, data: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(data))
    const timer = setTimeout(() => socket.destroy(), 2000)
    socket.on('data', () => undefined)
    socket.on('error', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

async function udpGarbage(port: number, datagrams: Buffer[]): Promise<void> {
  const socket = dgram.createSocket('udp4')
  for (const datagram of datagrams) await new Promise<void>((resolve) => socket.send(datagram, port, '127.0.0.1', () => resolve()))
  await new Promise<void>((resolve) => socket.close(() => resolve()))
}

describe('site: garbage and malformed documents', function () {
  this.timeout(90_000)
  const harness = new SiteHarness()
  let central: SiteProc
  let local: SiteProc

  beforeEach(async () => {
    const port = await freePort()
    local = await harness.local('a', `http://127.0.0.1:${port}`)
    central = await harness.central(port, {a: local.url}, ['--poll-ms', '200'])
  })

  afterEach(() => harness.cleanup())

  it('garbage on the HTTP and UDP ports never stops a server', async () => {
    const random = prng(13)
    const payloads = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n'),
      Buffer.from('NONSENSE\r\n\r\n'),
      Buffer.from('GET /records HTTP/1.1\r\n' + 'X-A: ' + 'a'.repeat(100_000) + '\r\n\r\n'),
      Buffer.from('POST /records/_bulk_docs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"docs": ['),
      Buffer.from('PUT /records/%E0%A4%A HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'),
      Buffer.from('GET /records/_changes?feed=longpoll&timeout=999999999 HTTP/1.1\r\nHost: x\r\n\r\n'),
      ...Array.from({length: 20}, () => bytes(random, 1 + Math.floor(random() * 4000))),
    ]
    for (const server of [central, local]) await Promise.all(payloads.map((data) => tcpGarbage(server.port, data)))
    const datagrams = [
      Buffer.alloc(0),
      Buffer.alloc(47, 0x1b),
      Buffer.concat([Buffer.from([0x24]), Buffer.alloc(47)]), // mode 4 (a server's answer) is not a request
      Buffer.concat([Buffer.from([0x03]), Buffer.alloc(47)]), // version 0
      bytes(random, 1500),
      ...Array.from({length: 50}, () => bytes(random, Math.floor(random() * 200))),
    ]
    await udpGarbage(central.port, datagrams)

    for (const server of [central, local]) {
      expect(server.child.exitCode).to.equal(null)
      expect((await getJson(`${server.url}/`)).couchdb).to.equal('Welcome')
      expect((await getJson(`${server.url}/records`)).db_name).to.equal('records')
    }
    const packet = await new ntp.Client('127.0.0.1', central.port, {timeout: 3000}).syncTime()
    expect(Math.abs(packet.t * 1000)).to.be.lessThan(50)
    const bad = await fetch(`${local.url}/records/%E0%A4%A`)
    expect(bad.status).to.equal(400)
    expect(await bad.json()).to.have.keys('error', 'reason')
  })

  it('a malformed document gets a CouchDB-style 400 and nothing stored is lost', async () => {
    const base = `${local.url}/records`
    const docs = Array.from({length: 10}, (_, i) => ({_id: `a:${i}`, owner: 'a', value: i}))
    expect((await sendJson('POST', `${base}/_bulk_docs`, {docs})).status).to.equal(201)
    const before = await revsOf(local.url)
    const info = await getJson(base)

    const cases: Array<[string, string, unknown]> = [
      ['PUT', `${base}/a:0`, '{"owner": "a", '],
      ['PUT', `${base}/a:0`, '[1, 2, 3]'],
      ['PUT', `${base}/a:0`, '"text"'],
      ['PUT', `${base}/a:0`, {_rev: 'not-a-rev', owner: 'a'}],
      ['PUT', `${base}/a:0`, {_rev: before.get('a:0'), _secret: 1}],
      ['PUT', `${base}/_bad`, {owner: 'a'}],
      ['PUT', `${base}/a:0`, {_id: 'a:1', owner: 'a'}],
      ['POST', `${base}/_bulk_docs`, {docs: 'nope'}],
      ['POST', `${base}/_bulk_docs`, '{"docs": [}'],
      ['POST', `${base}/_revs_diff`, '[]'],
      ['POST', `${base}/_revs_diff`, {'a:0': 'x'}],
      ['POST', `${base}/_bulk_get`, {docs: 5}],
      ['GET', `${base}/_changes?since=banana`, undefined],
      ['GET', `${base}/_changes?limit=-1`, undefined],
      ['GET', `${base}/_all_docs?startkey=notjson`, undefined],
    ]
    for (const [method, url, body] of cases) {
      const response = await fetch(url, {method, headers: {'content-type': 'application/json'}, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)})
      expect(response.status, `${method} ${url} ${JSON.stringify(body)}`).to.equal(400)
      const error = (await response.json()) as Record<string, unknown>
      expect(error).to.have.keys('error', 'reason')
      expect(error.error).to.be.a('string')
      expect(error.reason).to.be.a('string')
    }
    // In a batch, the bad document is refused alone, with a CouchDB error row; the good one is written.
    const mixed = await sendJson('POST', `${base}/_bulk_docs`, {docs: [{_id: 'a:100', owner: 'a'}, {_id: 'a:101', _oops: true}, 7]})
    expect(mixed.status).to.equal(201)
    const rows = mixed.body as unknown as Array<Record<string, unknown>>
    expect(rows[0]).to.include({ok: true, id: 'a:100'})
    expect(rows[1]).to.include({id: 'a:101', error: 'doc_validation'})
    expect(rows[2].error).to.equal('bad_request')
    const conflict = await sendJson('PUT', `${base}/a:3`, {owner: 'a', value: 'no rev'})
    expect(conflict.status).to.equal(409)
    expect(conflict.body).to.deep.equal({error: 'conflict', reason: 'Document update conflict.'})

    const after = await revsOf(local.url)
    for (const [id, rev] of before) expect(after.get(id), id).to.equal(rev)
    expect(after.size).to.equal(before.size + 1)
    expect((await getJson(base)).update_seq).to.equal((info.update_seq as number) + 1)
    for (let i = 0; i < 10; i++) expect((await getJson(`${base}/a:${i}`)).value).to.equal(i)
  })
})
