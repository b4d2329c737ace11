import {expect} from 'chai'
import PouchDB from 'pouchdb'

import {getJson, revsOf, sendJson, SiteHarness, type SiteProc, waitFor} from './helpers.js'

// PouchDB (the `pouchdb` package, on LevelDB in a temporary folder) is the
// third-party oracle: it replicates with a real `site local` process.
describe('site: PouchDB replicates with a local', function () {
  this.timeout(90_000)
  const harness = new SiteHarness()
  let local: SiteProc
  let pouch: PouchDB

  beforeEach(async () => {
    pouch = new PouchDB(harness.dir('pouch-'))
  })

  afterEach(async () => {
    await pouch.close().catch(() => undefined)
    await harness.cleanup()
  })

  it('pulls every record from a local with equal ids and revisions', async () => {
    local = await harness.local('north', 'http://127.0.0.1:1', {generateMs: 20})
    await waitFor('30 generated records', async () => (await revsOf(local.url)).size >= 30)
    const before = await revsOf(local.url)
    const result = await pouch.replicate.from(`${local.url}/records`)
    expect(result.ok).to.equal(true)
    expect(result.doc_write_failures).to.equal(0)
    const pulled = await pouch.allDocs({include_docs: true})
    const inPouch = new Map(pulled.rows.map((row) => [row.id, row.value.rev]))
    for (const [id, rev] of before) expect(inPouch.get(id), id).to.equal(rev)
    // Everything PouchDB holds is the local's, at the same revision and content.
    for (const row of pulled.rows) {
      const doc = await getJson(`${local.url}/records/${encodeURIComponent(row.id)}`)
      expect(doc._rev).to.equal(row.value.rev)
      expect(row.doc).to.deep.equal(doc)
      expect(doc.owner).to.equal('north')
    }
  })

  it('pushes new, updated and deleted documents that arrive with the same revisions', async () => {
    local = await harness.local('north', 'http://127.0.0.1:1')
    for (let i = 0; i < 20; i++) await pouch.put({_id: `p${i}`, n: i})
    for (let i = 0; i < 5; i++) {
      const doc = await pouch.get(`p${i}`)
      await pouch.put({...doc, n: 100 + i})
    }
    for (let i = 5; i < 10; i++) await pouch.remove(await pouch.get(`p${i}`))
    const result = await pouch.replicate.to(`${local.url}/records`)
    expect(result.ok).to.equal(true)
    expect(result.docs_written).to.equal(20)
    for (let i = 0; i < 20; i++) {
      const id = `p${i}`
      const [theirs] = (await pouch.get(id, {revs: true, open_revs: 'all'})) as unknown as Array<{ok: Record<string, unknown>}>
      const [ours] = await getJson<Array<{ok: Record<string, unknown>}>>(`${local.url}/records/${id}?revs=true&open_revs=all`)
      expect(ours.ok, id).to.deep.equal(theirs.ok)
    }
    const response = await fetch(`${local.url}/records/p7`)
    expect(response.status).to.equal(404)
    expect(await response.json()).to.deep.equal({error: 'not_found', reason: 'deleted'})
    expect((await getJson(`${local.url}/records/p2`)).n).to.equal(102)
    expect((await getJson(`${local.url}/records`)).doc_count).to.equal(15)
  })

  it('a conflicting edit on both sides gives the same winner and _conflicts on both', async () => {
    local = await harness.local('north', 'http://127.0.0.1:1')
    const remote = `${local.url}/records`
    for (let i = 0; i < 4; i++) await pouch.put({_id: `c${i}`, v: 'base'})
    await pouch.replicate.to(remote)
    for (let i = 0; i < 4; i++) {
      const doc = await pouch.get(`c${i}`)
      await pouch.put({...doc, v: 'pouch'})
      const put = await sendJson('PUT', `${remote}/c${i}`, {_rev: doc._rev, v: `local-${i}`})
      expect(put.status).to.equal(201)
    }
    // c3: one side also deletes its branch, so the other side's live edit must win on both.
    await pouch.remove(await pouch.get('c3'))
    await pouch.replicate.to(remote)
    await pouch.replicate.from(remote)
    for (let i = 0; i < 4; i++) {
      const id = `c${i}`
      const mine = await pouch.get(id, {conflicts: true})
      const ours = await getJson(`${remote}/${id}?conflicts=true`)
      expect(ours._rev, id).to.equal(mine._rev)
      expect(ours._conflicts ?? [], id).to.deep.equal(mine._conflicts ?? [])
      expect(ours, id).to.deep.equal(mine)
    }
    expect((await getJson(`${remote}/c0?conflicts=true`))._conflicts).to.have.length(1)
    expect((await getJson(`${remote}/c3`)).v).to.equal('local-3')
  })

  it('a rerun moves nothing, either way', async () => {
    local = await harness.local('north', 'http://127.0.0.1:1', {generateMs: 20})
    await waitFor('20 generated records', async () => (await revsOf(local.url)).size >= 20)
    const stopped = await harness.local('south', 'http://127.0.0.1:1')
    await pouch.put({_id: 'mine', v: 1})
    const first = await pouch.replicate.from(`${local.url}/records`)
    expect(first.docs_written).to.be.greaterThan(0)
    await pouch.replicate.to(`${stopped.url}/records`)
    const seq = (await getJson(`${stopped.url}/records`)).update_seq
    const again = await pouch.replicate.to(`${stopped.url}/records`)
    expect(again.docs_read).to.equal(0)
    expect(again.docs_written).to.equal(0)
    expect((await getJson(`${stopped.url}/records`)).update_seq).to.equal(seq)
    // The pull again from where its checkpoint says: only what the local generated since.
    const pulledBefore = (await pouch.info()).doc_count
    const second = await pouch.replicate.from(`${local.url}/records`)
    expect(second.docs_written).to.equal((await pouch.info()).doc_count - pulledBefore)
    const third = await pouch.replicate.from(`${stopped.url}/records`)
    expect(third.docs_written).to.equal(0)
  })
})
