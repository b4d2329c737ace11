import {expect} from 'chai'

import {getJson, sendJson, SiteHarness, type SiteProc} from './helpers.js'

interface Changes {
  results: Array<{seq: number; id: string; changes: Array<{rev: string}>; deleted?: boolean}>
  last_seq: number
}

describe('site: the _changes feed', function () {
  this.timeout(60_000)
  const harness = new SiteHarness()
  let local: SiteProc
  let base: string

  before(async () => {
    local = await harness.local('a', 'http://127.0.0.1:1')
    base = `${local.url}/records`
    const docs = [
      ...Array.from({length: 6}, (_, i) => ({_id: `a:${i}`, owner: 'a', value: i})),
      ...Array.from({length: 4}, (_, i) => ({_id: `b:${i}`, owner: 'b', value: i})),
    ]
    await sendJson('POST', `${base}/_bulk_docs`, {docs})
    // a:0 is edited, then gets a second branch from its first revision (a conflict); b:0 is deleted.
    const first = await getJson(`${base}/a:0?revs=true`)
    const ids = (first._revisions as {ids: string[]}).ids
    await sendJson('PUT', `${base}/a:0`, {_rev: first._rev, owner: 'a', value: 'edited'})
    await sendJson('POST', `${base}/_bulk_docs`, {new_edits: false, docs: [{_id: 'a:0', _rev: `2-${'0'.repeat(32)}`, _revisions: {start: 2, ids: ['0'.repeat(32), ids[0]]}, owner: 'a', value: 'branch'}]})
    const b0 = await getJson(`${base}/b:0`)
    await fetch(`${base}/b:0?rev=${b0._rev as string}`, {method: 'DELETE'})
  })

  after(() => harness.cleanup())

  it('lists each document once at its latest change, with since and limit', async () => {
    const all = await getJson<Changes>(`${base}/_changes`)
    expect(all.results.map((r) => r.id)).to.have.members([...Array.from({length: 6}, (_, i) => `a:${i}`), ...Array.from({length: 4}, (_, i) => `b:${i}`)])
    expect(all.last_seq).to.equal(13)
    expect(all.results.find((r) => r.id === 'b:0')?.deleted).to.equal(true)
    const page = await getJson<Changes>(`${base}/_changes?limit=3&since=2`)
    expect(page.results.map((r) => r.seq)).to.deep.equal([3, 4, 5])
    expect(page.last_seq).to.equal(5)
    expect((await getJson<Changes>(`${base}/_changes?since=13`)).results).to.deep.equal([])
  })

  it('style=all_docs lists every leaf, the winner first', async () => {
    const row = (await getJson<Changes>(`${base}/_changes?style=all_docs`)).results.find((r) => r.id === 'a:0')!
    expect(row.changes).to.have.length(2)
    const doc = await getJson(`${base}/a:0?conflicts=true`)
    expect(row.changes[0].rev).to.equal(doc._rev)
    expect(row.changes[1].rev).to.equal((doc._conflicts as string[])[0])
  })

  it('filter=site/owner&owner=NAME passes one owner only, a tombstone by its id prefix, and moves last_seq past the rest', async () => {
    const b = await getJson<Changes>(`${base}/_changes?filter=site/owner&owner=b`)
    expect(b.results.map((r) => r.id).sort()).to.deep.equal(['b:0', 'b:1', 'b:2', 'b:3'])
    expect(b.last_seq).to.equal(13)
    const unknown = await fetch(`${base}/_changes?filter=app/other`)
    expect(unknown.status).to.equal(404)
    const noOwner = await fetch(`${base}/_changes?filter=site/owner`)
    expect(noOwner.status).to.equal(400)
  })

  it('longpoll sends heartbeats while it waits and answers with the next change', async () => {
    const started = Date.now()
    const waiting = fetch(`${base}/_changes?feed=longpoll&since=now&heartbeat=100&timeout=20000`).then((r) => r.text())
    await new Promise((resolve) => setTimeout(resolve, 600))
    await sendJson('PUT', `${base}/a:100`, {owner: 'a', value: 100})
    const text = await waiting
    expect(text.startsWith('\n')).to.equal(true)
    const body = JSON.parse(text) as Changes
    expect(body.results.map((r) => r.id)).to.deep.equal(['a:100'])
    expect(Date.now() - started).to.be.lessThan(20_000)
    const quiet = await fetch(`${base}/_changes?feed=longpoll&since=now&timeout=300`).then((r) => r.json() as Promise<Changes>)
    expect(quiet.results).to.deep.equal([])
    // A filtered longpoll ignores others' changes and keeps waiting for its owner's.
    const filtered = fetch(`${base}/_changes?feed=longpoll&since=now&filter=site/owner&owner=b&timeout=20000`).then((r) => r.json() as Promise<Changes>)
    await new Promise((resolve) => setTimeout(resolve, 300))
    await sendJson('PUT', `${base}/a:101`, {owner: 'a', value: 101})
    await new Promise((resolve) => setTimeout(resolve, 300))
    await sendJson('PUT', `${base}/b:101`, {owner: 'b', value: 101})
    expect((await filtered).results.map((r) => r.id)).to.deep.equal(['b:101'])
  })
})
