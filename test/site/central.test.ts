import {expect} from 'chai'

import {freePort, getJson, revsOf, sendJson, SiteHarness, type SiteProc, waitFor} from './helpers.js'

interface LinkStatus {
  name: string
  state: string
  pulled: number
  pushed: number
  errors: number
  lastSeq: number | null
}

async function links(central: SiteProc): Promise<Map<string, LinkStatus>> {
  const status = await getJson<{locals: LinkStatus[]}>(`${central.url}/_status`)
  return new Map(status.locals.map((l) => [l.name, l]))
}

/** Writes `count` records owned by `name`, numbered from `from`, through the local's own API. */
async function addRecords(local: SiteProc, name: string, count: number, from = 1): Promise<void> {
  const docs = Array.from({length: count}, (_, i) => ({_id: `${name}:${from + i}`, owner: name, at: new Date().toISOString(), value: from + i}))
  const response = await sendJson('POST', `${local.url}/records/_bulk_docs`, {docs})
  expect(response.status).to.equal(201)
}

/** True when `central` holds every (id, rev) of `expected`. */
async function holds(central: SiteProc, expected: Map<string, string>): Promise<boolean> {
  const have = await revsOf(central.url)
  for (const [id, rev] of expected) if (have.get(id) !== rev) return false
  return true
}

function idsOf(revs: Map<string, string>, owner: string): string[] {
  return [...revs.keys()].filter((id) => id.startsWith(`${owner}:`)).sort()
}

function eventsFor(proc: SiteProc, event: string, local: string): Array<Record<string, unknown>> {
  return proc.events().filter((e) => e.event === event && e.local === local)
}

describe('site: a central polling two locals', function () {
  this.timeout(120_000)
  const harness = new SiteHarness()

  afterEach(() => harness.cleanup())

  async function setup(options: {generateMs?: number; centralFlags?: string[]} = {}): Promise<{central: SiteProc; a: SiteProc; b: SiteProc; port: number}> {
    const port = await freePort()
    const centralUrl = `http://127.0.0.1:${port}`
    const a = await harness.local('a', centralUrl, {generateMs: options.generateMs})
    const b = await harness.local('b', centralUrl, {generateMs: options.generateMs})
    const central = await harness.central(port, {a: a.url, b: b.url}, ['--poll-ms', '200', '--max-backoff-ms', '1000', ...(options.centralFlags ?? [])])
    return {central, a, b, port}
  }

  it('holds every record of both within a few polls, and with nothing new its update_seq does not move', async () => {
    const {central, a, b} = await setup()
    await addRecords(a, 'a', 60)
    await addRecords(b, 'b', 40)
    const expected = new Map([...(await revsOf(a.url)), ...(await revsOf(b.url))])
    expect(expected.size).to.equal(100)
    await waitFor('every record at the central', () => holds(central, expected), 30_000)
    const seq = (await getJson(`${central.url}/records`)).update_seq
    // Three more polls of each local, with nothing new.
    const polls = {a: eventsFor(central, 'poll', 'a').length, b: eventsFor(central, 'poll', 'b').length}
    await waitFor('three more polls of each', () => eventsFor(central, 'poll', 'a').length >= polls.a + 3 && eventsFor(central, 'poll', 'b').length >= polls.b + 3)
    expect((await getJson(`${central.url}/records`)).update_seq).to.equal(seq)
    const status = await links(central)
    expect(status.get('a')).to.include({state: 'up', pulled: 60})
    expect(status.get('b')).to.include({state: 'up', pulled: 40})
    const pulls = central.events().filter((e) => e.event === 'pull')
    expect(pulls.every((e) => typeof e.local === 'string' && typeof e.ms === 'number' && typeof e.docsRead === 'number' && typeof e.docsWritten === 'number')).to.equal(true)
    // The central's own records: exactly both locals' ids.
    const atCentral = await revsOf(central.url)
    expect(atCentral.size).to.equal(100)
  })

  it('a local SIGKILLed: the other keeps arriving, it shows down with a log line per failure, and restarted it catches up with nothing stored twice', async () => {
    const {central, a, b} = await setup({generateMs: 100})
    await waitFor('records of both at the central', async () => {
      const have = await revsOf(central.url)
      return idsOf(have, 'a').length >= 5 && idsOf(have, 'b').length >= 5
    })
    await harness.kill(a)
    await waitFor('a down', async () => (await links(central)).get('a')?.state === 'down')
    const bBefore = idsOf(await revsOf(central.url), 'b').length
    await waitFor("20 more of b's records", async () => idsOf(await revsOf(central.url), 'b').length >= bBefore + 20, 30_000)
    await waitFor('three failures', async () => (await links(central)).get('a')!.errors >= 3)
    const errors = (await links(central)).get('a')!.errors
    await waitFor('a log line per failure', () => eventsFor(central, 'failure', 'a').length >= errors)
    const failures = eventsFor(central, 'failure', 'a')
    expect(failures.every((e) => typeof e.error === 'string' && (e.error as string).length > 0)).to.equal(true)
    expect(eventsFor(central, 'failure', 'b')).to.have.length(0)
    expect(eventsFor(central, 'state', 'a').some((e) => e.state === 'down')).to.equal(true)

    const restarted = await harness.local('a', `http://127.0.0.1:${central.port}`, {port: a.port, dataDir: a.args[a.args.indexOf('--data-dir') + 1], generateMs: 100})
    const snapshot = await revsOf(restarted.url)
    await waitFor("all of a's records at the central", () => holds(central, snapshot), 30_000)
    await waitFor('a up', async () => (await links(central)).get('a')?.state === 'up')
    // Each of a's records moved once: the documents pulled equal a's records at the central, none in conflict.
    await waitFor('the pull counted', async () => {
      const pulled = (await links(central)).get('a')!.pulled
      return pulled === idsOf(await revsOf(central.url), 'a').length
    })
    const sample = idsOf(await revsOf(central.url), 'a').slice(0, 10)
    for (const id of sample) {
      const doc = await getJson(`${central.url}/records/${encodeURIComponent(id)}?conflicts=true`)
      expect(doc._conflicts, id).to.equal(undefined)
      expect(String(doc._rev).startsWith('1-'), id).to.equal(true)
    }
    expect(eventsFor(central, 'state', 'a').some((e) => e.state === 'up')).to.equal(true)
  })

  it('a local hung with SIGSTOP does not delay the other local', async () => {
    const {central, a, b} = await setup({centralFlags: ['--timeout-ms', '6000']})
    await addRecords(a, 'a', 5)
    await addRecords(b, 'b', 5)
    await waitFor('both at the central', async () => (await revsOf(central.url)).size === 10)
    a.child.kill('SIGSTOP')
    try {
      // Each of b's new records arrives well inside one request timeout of the hung local (6 s); a shared loop would wait that out.
      for (let i = 0; i < 4; i++) {
        await addRecords(b, 'b', 1, 100 + i)
        const started = Date.now()
        await waitFor(`b:${100 + i} at the central`, async () => (await revsOf(central.url)).has(`b:${100 + i}`), 20_000, 50)
        expect(Date.now() - started, `b:${100 + i}`).to.be.lessThan(4500)
        if (i === 0) await new Promise((resolve) => setTimeout(resolve, 1000)) // let a's poll hang meanwhile
      }
      await waitFor('a down after its timeout', async () => (await links(central)).get('a')?.state === 'down', 30_000)
      expect((await links(central)).get('b')?.state).to.equal('up')
    } finally {
      a.child.kill('SIGCONT')
    }
  })

  it('a local restarted on an empty data dir gets back every record it owns and none of the other local\'s', async () => {
    const {central, a, b} = await setup()
    await addRecords(a, 'a', 50)
    await addRecords(b, 'b', 30)
    const owned = await revsOf(a.url)
    await waitFor('every record at the central', async () => (await revsOf(central.url)).size === 80)
    await harness.kill(a)
    const fresh = await harness.local('a', `http://127.0.0.1:${central.port}`, {port: a.port})
    await waitFor("a's 50 records back at a", async () => (await revsOf(fresh.url)).size >= 50, 30_000)
    const back = await revsOf(fresh.url)
    expect([...back.keys()].sort()).to.deep.equal([...owned.keys()].sort())
    for (const [id, rev] of owned) expect(back.get(id), id).to.equal(rev)
    expect(idsOf(back, 'b')).to.have.length(0)
    const push = central.events().filter((e) => e.event === 'push' && e.local === 'a' && e.docsWritten === 50)
    expect(push).to.have.length(1)
    expect(push[0].reason).to.equal('new identity')
    expect((await revsOf(central.url)).size).to.equal(80)
  })

  it('POST /_push?local=NAME pushes that local\'s records only', async () => {
    const {central, a, b} = await setup()
    await addRecords(a, 'a', 10)
    await waitFor('a at the central', async () => (await revsOf(central.url)).size === 10)
    // A record of b's that reached only the central (written there directly).
    await sendJson('PUT', `${central.url}/records/b:7`, {owner: 'b', at: new Date().toISOString(), value: 7})
    const response = await sendJson('POST', `${central.url}/_push?local=b`, {})
    expect(response.status).to.equal(200)
    expect(response.body).to.include({ok: true, docsWritten: 1})
    expect([...(await revsOf(b.url)).keys()]).to.deep.equal(['b:7'])
    const unknown = await sendJson('POST', `${central.url}/_push?local=zz`, {})
    expect(unknown.status).to.equal(404)
    expect(unknown.body.error).to.equal('not_found')
  })
})
