import {expect} from 'chai'
import ntp from 'ntp-time'

import {freePort, getJson, SiteHarness, waitFor} from './helpers.js'

interface LocalStatus {
  clock: {offsetMs: number | null; delayMs: number | null; lastSync: string | null}
  updateSeq: number
}

/** The `ntp-time` package's client (independent of ours): the least-delay sample of several, offset in ms. */
async function independentOffset(port: number): Promise<{offsetMs: number; delayMs: number}> {
  let best: {offsetMs: number; delayMs: number} | undefined
  for (let i = 0; i < 8; i++) {
    const packet = await new ntp.Client('127.0.0.1', port, {timeout: 3000}).syncTime()
    const sample = {offsetMs: packet.t * 1000, delayMs: packet.d * 1000}
    if (!best || sample.delayMs < best.delayMs) best = sample
  }
  return best!
}

describe('site: time synchronisation', function () {
  this.timeout(90_000)
  const harness = new SiteHarness()

  afterEach(() => harness.cleanup())

  it('--clock-offset-ms 250: an independent SNTP client measures +250 ms, the locals agree within 20 ms and stamp corrected times', async () => {
    const port = await freePort()
    const centralUrl = `http://127.0.0.1:${port}`
    const a = await harness.local('a', centralUrl, {generateMs: 50, extra: ['--sync-ms', '500']})
    const b = await harness.local('b', centralUrl, {extra: ['--sync-ms', '500']})
    const central = await harness.central(port, {a: a.url, b: b.url}, ['--clock-offset-ms', '250', '--poll-ms', '300'])

    const measured = await independentOffset(port)
    expect(measured.offsetMs).to.be.within(245, 255)

    const timeBefore = Date.now()
    const time = await getJson<{now: number}>(`${central.url}/time`)
    expect(time.now - timeBefore).to.be.within(240, 260 + (Date.now() - timeBefore))

    for (const local of [a, b]) {
      const status = await waitFor('a clock sync', async () => {
        const s = await getJson<LocalStatus>(`${local.url}/_status`)
        return s.clock.offsetMs !== null ? s : undefined
      })
      expect(status.clock.offsetMs! - measured.offsetMs).to.be.within(-20, 20)
      expect(status.clock.delayMs).to.be.at.least(0)
      expect(Date.parse(status.clock.lastSync!)).to.be.a('number')
    }
    await waitFor("the central shows the locals' offsets", async () => {
      const s = await getJson<{locals: Array<{clockOffsetMs: number | null}>}>(`${central.url}/_status`)
      return s.locals.every((l) => l.clockOffsetMs !== null && Math.abs(l.clockOffsetMs - measured.offsetMs) <= 20)
    })

    // A record made while we watch (a window shorter than the offset) carries the corrected time.
    let checked = false
    for (let attempt = 0; attempt < 20 && !checked; attempt++) {
      const t0 = Date.now()
      const since = (await getJson<LocalStatus>(`${a.url}/_status`)).updateSeq
      const changes = await getJson<{results: Array<{doc: {at: string; owner: string}}>}>(`${a.url}/records/_changes?feed=longpoll&include_docs=true&limit=1&since=${since}&timeout=5000`)
      const t1 = Date.now()
      if (changes.results.length === 0 || t1 - t0 > 200) continue
      const at = Date.parse(changes.results[0].doc.at)
      expect(at).to.be.within(t0 + 250 - 20, t1 + 250 + 20)
      checked = true
    }
    expect(checked, 'a record seen within a 200 ms window').to.equal(true)
  })

  it('the SNTP server answers the independent client with no offset by default, and a local shows about 0', async () => {
    const port = await freePort()
    const local = await harness.local('a', `http://127.0.0.1:${port}`, {extra: ['--sync-ms', '500']})
    await harness.central(port, {a: local.url})
    const measured = await independentOffset(port)
    expect(measured.offsetMs).to.be.within(-5, 5)
    const status = await waitFor('a clock sync', async () => {
      const s = await getJson<LocalStatus>(`${local.url}/_status`)
      return s.clock.offsetMs !== null ? s : undefined
    })
    expect(status.clock.offsetMs).to.be.within(-20, 20)
  })
})
