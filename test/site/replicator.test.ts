import {expect} from 'chai'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'

import express from 'express'
import expressPouchDB from 'express-pouchdb'
import PouchDB from 'pouchdb'

import {CouchClient, replicate} from '../../src/site/index.js'
import {freePort, getJson, revsOf, sendJson, SiteHarness, type SiteProc, waitFor} from './helpers.js'

/** Every leaf of every document (deleted ones too), as open_revs=all with revs gives them. */
async function leavesOf(db: string, ids: string[]): Promise<Map<string, unknown[]>> {
  const out = new Map<string, unknown[]>()
  for (const id of ids) {
    const found = await getJson<Array<{ok?: {_rev: string}}>>(`${db}/${encodeURIComponent(id)}?revs=true&open_revs=all`)
    out.set(id, found.map((r) => r.ok).sort((a, b) => String(a?._rev).localeCompare(String(b?._rev))))
  }
  return out
}

// PouchDB's own CouchDB-protocol server (express-pouchdb, a third party) on
// one side, a real `site local` process on the other; our replicator between.
describe("site: our replicator against PouchDB's server", function () {
  this.timeout(90_000)
  const harness = new SiteHarness()
  let server: http.Server
  let pouchUrl: string
  let pouch: PouchDB
  let local: SiteProc

  beforeEach(async () => {
    const Pouch = (PouchDB as unknown as {defaults(options: Record<string, unknown>): typeof PouchDB}).defaults({prefix: harness.dir('pouch-server-') + '/'})
    const app = express()
    app.use('/', expressPouchDB(Pouch, {mode: 'minimumForPouchDB', inMemoryConfig: true, logPath: join(harness.dir('pouch-log-'), 'log.txt')}))
    server = http.createServer(app)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    pouchUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    expect((await sendJson('PUT', `${pouchUrl}/records`, {})).status).to.equal(201)
    pouch = new Pouch('records')
    local = await harness.local('north', 'http://127.0.0.1:1')
  })

  afterEach(async () => {
    await pouch.close().catch(() => undefined)
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await harness.cleanup()
  })

  const client = (url: string): CouchClient => new CouchClient({url: `${url}/records`, timeoutMs: 10_000})

  it('pulls new, updated, deleted and conflicting documents with their revisions, and a rerun moves nothing', async () => {
    for (let i = 0; i < 30; i++) await pouch.put({_id: `north:${i}`, owner: 'north', value: i})
    for (let i = 0; i < 5; i++) await pouch.put({...(await pouch.get(`north:${i}`)), value: 100 + i})
    for (let i = 5; i < 8; i++) await pouch.remove(await pouch.get(`north:${i}`))
    // A second branch from north:2's first revision: a conflict.
    const base = (await pouch.get('north:2', {revs: true})) as unknown as {_revisions: {ids: string[]}}
    const branch = {_id: 'north:2', _rev: `2-${'e'.repeat(32)}`, _revisions: {start: 2, ids: ['e'.repeat(32), base._revisions.ids[1]]}, owner: 'north', value: 'theirs'}
    await pouch.bulkDocs([branch], {new_edits: false})

    const first = await replicate(client(pouchUrl), client(local.url))
    expect(first.docsWritten).to.equal(31)
    const ids = Array.from({length: 30}, (_, i) => `north:${i}`)
    expect(await leavesOf(`${local.url}/records`, ids)).to.deep.equal(await leavesOf(`${pouchUrl}/records`, ids))
    const ours = await getJson(`${local.url}/records/north:2?conflicts=true`)
    const theirs = await pouch.get('north:2', {conflicts: true})
    expect(ours).to.deep.equal(theirs)
    expect(ours._conflicts).to.have.length(1)

    const seq = (await getJson(`${local.url}/records`)).update_seq
    const again = await replicate(client(pouchUrl), client(local.url))
    expect(again).to.include({docsRead: 0, docsWritten: 0, missingFound: 0})
    expect(again.startSeq).to.equal(first.lastSeq)
    expect((await getJson(`${local.url}/records`)).update_seq).to.equal(seq)
  })

  it("pushes our records into PouchDB's server with the same revisions, resuming from the checkpoint", async () => {
    const docs = Array.from({length: 40}, (_, i) => ({_id: `north:${i}`, owner: 'north', value: i}))
    await sendJson('POST', `${local.url}/records/_bulk_docs`, {docs})
    const first = await replicate(client(local.url), client(pouchUrl))
    expect(first.docsWritten).to.equal(40)
    const revs = await revsOf(local.url)
    const inPouch = await pouch.allDocs()
    expect(new Map(inPouch.rows.map((r) => [r.id, r.value.rev]))).to.deep.equal(revs)
    await sendJson('PUT', `${local.url}/records/north:100`, {owner: 'north', value: 100})
    const second = await replicate(client(local.url), client(pouchUrl))
    expect(second).to.include({docsWritten: 1})
    expect(second.startSeq).to.equal(first.lastSeq)
    expect((await pouch.get('north:100')).value).to.equal(100)
  })

  it('falls back to GET open_revs when the source has no _bulk_get', async () => {
    const docs = Array.from({length: 12}, (_, i) => ({_id: `north:${i}`, owner: 'north', value: i}))
    await sendJson('POST', `${local.url}/records/_bulk_docs`, {docs})
    const first = await getJson(`${local.url}/records/north:3`)
    await sendJson('DELETE', `${local.url}/records/north:3?rev=${first._rev as string}`, {})
    // A proxy in front of our local that answers _bulk_get as an old CouchDB does, and forwards the rest.
    const seen: string[] = []
    const proxy = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`)
      if (req.url?.includes('_bulk_get')) {
        req.resume()
        res.writeHead(404, {'content-type': 'application/json'}).end('{"error":"not_found","reason":"missing"}')
        return
      }
      const upstream = http.request(`${local.url}${req.url}`, {method: req.method, headers: req.headers}, (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.headers)
        reply.pipe(res)
      })
      req.pipe(upstream)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    try {
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
      const result = await replicate(client(proxyUrl), client(pouchUrl))
      expect(result.docsWritten).to.equal(12)
      expect(seen.some((line) => line.startsWith('GET /records/north%3A3?revs=true&latest=true&open_revs='))).to.equal(true)
      const ids = docs.map((d) => d._id)
      expect(await leavesOf(`${pouchUrl}/records`, ids)).to.deep.equal(await leavesOf(`${local.url}/records`, ids))
    } finally {
      proxy.closeAllConnections()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    }
  })

  it("a central pulls from PouchDB's server as one of its locals", async () => {
    for (let i = 0; i < 25; i++) await pouch.put({_id: `p:${i}`, owner: 'p', value: i})
    const port = await freePort()
    const central = await harness.central(port, {p: pouchUrl, north: local.url}, ['--poll-ms', '200'])
    const expected = await revsOf(pouchUrl)
    await waitFor("PouchDB's records at the central", async () => {
      const have = await revsOf(central.url)
      return [...expected].every(([id, rev]) => have.get(id) === rev)
    })
    // The poll ends (and the state is set) after the records are in.
    await waitFor('p up with 25 pulled', async () => {
      const status = await getJson<{locals: Array<{name: string; state: string; pulled: number}>}>(`${central.url}/_status`)
      const p = status.locals.find((l) => l.name === 'p')
      return p?.state === 'up' && p.pulled === 25
    })
  })
})
