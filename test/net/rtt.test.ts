import {expect} from 'chai'

import {seededRandom, LossyPath} from '../../src/net/loss.js'
import {DuplicateFilter, RecentIds} from '../../src/net/recent-ids.js'
import {RttEstimator} from '../../src/net/rtt.js'

describe('RFC 6298 retransmission timeout', () => {
  it('starts at 1 s and doubles on each backoff up to the cap', () => {
    const rtt = new RttEstimator()
    expect(rtt.rto).to.equal(1000)
    rtt.backoff()
    expect(rtt.rto).to.equal(2000)
    for (let i = 0; i < 10; i++) rtt.backoff()
    expect(rtt.rto).to.equal(60_000)
  })

  it('sets SRTT = R and RTTVAR = R/2 on the first sample, then smooths with 1/8 and 1/4', () => {
    const rtt = new RttEstimator({minRtoMs: 1, granularityMs: 1})
    rtt.sample(100)
    expect(rtt.srtt).to.equal(100)
    expect(rtt.rttvar).to.equal(50)
    expect(rtt.rto).to.equal(100 + 4 * 50)
    rtt.sample(200)
    expect(rtt.rttvar).to.equal(0.75 * 50 + 0.25 * 100)
    expect(rtt.srtt).to.equal(0.875 * 100 + 0.125 * 200)
    expect(rtt.rto).to.be.closeTo(112.5 + 4 * 62.5, 1e-9)
  })

  it('keeps the RTO within its floor and uses the clock granularity when RTTVAR is tiny', () => {
    const rtt = new RttEstimator({minRtoMs: 200, granularityMs: 10})
    for (let i = 0; i < 50; i++) rtt.sample(0.1)
    expect(rtt.rto).to.equal(200)
    const fine = new RttEstimator({minRtoMs: 1, granularityMs: 10})
    for (let i = 0; i < 200; i++) fine.sample(5)
    expect(fine.rto).to.be.closeTo(15, 0.01)
  })
})

describe('duplicate memory', () => {
  it('remembers exactly the last N ids of a sender, wrap-around included', () => {
    const ids = new RecentIds(4)
    for (const id of [0xff_ff_ff_fe, 0xff_ff_ff_ff, 0, 1]) ids.add(id)
    expect([0xff_ff_ff_fe, 0xff_ff_ff_ff, 0, 1].every((id) => ids.has(id))).to.equal(true)
    ids.add(2)
    expect(ids.has(0xff_ff_ff_fe)).to.equal(false)
    expect(ids.has(2)).to.equal(true)
    expect(ids.size).to.equal(4)
  })

  it('keeps senders apart and forgets the least recently heard beyond its bounds', () => {
    const filter = new DuplicateFilter(100, 2, 150)
    filter.remember('a|1', 5)
    expect(filter.seen('a|1', 5)).to.equal(true)
    expect(filter.seen('a|2', 5)).to.equal(false)
    filter.remember('b|1', 5)
    filter.remember('c|1', 5)
    expect(filter.senderCount).to.equal(2)
    for (let id = 0; id < 100; id++) filter.remember('d|1', id)
    expect(filter.seen('d|1', 0)).to.equal(true)
    expect(filter.senderCount).to.be.at.most(2)
  })
})

describe('loss injection', () => {
  it('makes the same decisions for the same seed and roughly the asked fraction', () => {
    const run = (seed: number): number[] => {
      const out: number[] = []
      const path = new LossyPath<number>({drop: 0.1, reorder: 0.05}, seed, (n) => out.push(n))
      for (let i = 0; i < 10_000; i++) path.pass(i, 0)
      path.tick(1)
      return out
    }
    const first = run(7)
    expect(run(7)).to.deep.equal(first)
    expect(run(8)).to.not.deep.equal(first)
    expect(first.length).to.be.within(8800, 9200)
    expect(first.some((n, i) => i > 0 && n < first[i - 1])).to.equal(true)
    expect(seededRandom(1)()).to.equal(seededRandom(1)())
  })

  it('delays datagrams until their release time', () => {
    const out: number[] = []
    const path = new LossyPath<number>({delay: 1, delayMs: 100, seed: 3}, 3, (n) => out.push(n))
    path.pass(1, 0)
    path.tick(40)
    expect(out).to.deep.equal([])
    expect(path.holding).to.equal(true)
    path.tick(200)
    expect(out).to.deep.equal([1])
  })
})
