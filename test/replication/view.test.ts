import {expect} from 'chai'

import {ViewService} from '../../src/replication/view.js'

// The view rules in-process, against the pure state machine: the finer
// points the black-box tests in coordinator.test.ts do not reach.
describe('replication ViewService (state machine)', () => {
  /** s1 master and s2 backup, both views acked: view 2. */
  function twoServers(deadPings = 3): ViewService {
    const vs = new ViewService({deadPings})
    vs.ping(0, 's1')
    vs.ping(1, 's1')
    vs.ping(0, 's2')
    vs.ping(2, 's1')
    vs.ping(2, 's2')
    return vs
  }

  it('declares a server dead after exactly deadPings missed ticks', () => {
    const vs = twoServers(3)
    vs.tick()
    vs.ping(2, 's1')
    vs.tick()
    vs.ping(2, 's1')
    expect(vs.view().backup, 'after 2 missed ticks').to.equal('s2')
    vs.tick()
    expect(vs.view()).to.deep.equal({number: 3, master: 's1', backup: ''})
  })

  it('counts a master acked only when it pings the current number', () => {
    const vs = new ViewService()
    vs.ping(0, 's1')
    expect(vs.isAcked()).to.equal(false)
    vs.ping(7, 's1')
    expect(vs.isAcked()).to.equal(false)
    vs.ping(1, 's1')
    expect(vs.isAcked()).to.equal(true)
  })

  it('keeps view 1 when its master re-pings 0 before acking (it had no data to lose)', () => {
    const vs = new ViewService()
    vs.ping(0, 's1')
    vs.ping(0, 's1')
    vs.ping(1, 's1')
    expect(vs.isAcked()).to.equal(true)
    expect(vs.view()).to.deep.equal({number: 1, master: 's1', backup: ''})
  })

  it('never accepts the ack of a master that restarted in an unacked view', () => {
    const vs = new ViewService()
    vs.ping(0, 's1')
    vs.ping(1, 's1')
    vs.ping(0, 's2') // view 2, not acked
    vs.ping(0, 's1') // s1 restarted: its data is gone
    vs.ping(2, 's1')
    expect(vs.isAcked()).to.equal(false)
    expect(vs.view()).to.deep.equal({number: 2, master: 's1', backup: 's2'})
  })

  it('replaces a restarted backup with itself in a new view, so it gets a fresh copy', () => {
    const vs = twoServers()
    expect(vs.ping(0, 's2')).to.deep.equal({number: 3, master: 's1', backup: 's2'})
  })

  it('does not count a newly named backup pinging 0 before the master acked as a restart', () => {
    const vs = new ViewService()
    vs.ping(0, 's1')
    vs.ping(1, 's1')
    expect(vs.ping(0, 's2')).to.deep.equal({number: 2, master: 's1', backup: 's2'})
    vs.ping(0, 's2') // s2 has not heard of view 2 yet
    vs.ping(2, 's1')
    expect(vs.isAcked()).to.equal(true)
    expect(vs.view(), 'no extra view with the same master and backup').to.deep.equal({number: 2, master: 's1', backup: 's2'})
    vs.ping(0, 's2') // now, after the ack, it did restart
    expect(vs.view()).to.deep.equal({number: 3, master: 's1', backup: 's2'})
  })

  it('prefers another idle server to a restarted one as the new backup', () => {
    const vs = twoServers()
    vs.ping(0, 's3')
    expect(vs.ping(0, 's2')).to.deep.equal({number: 3, master: 's1', backup: 's3'})
  })

  it('makes at most one change before the next ack', () => {
    const vs = twoServers(2)
    vs.ping(0, 's3')
    vs.tick()
    vs.tick() // s1 and s2 silent: s1 is dead, but so is the backup: nothing can change
    expect(vs.view().number).to.equal(2)
    const fresh = twoServers(2)
    fresh.ping(0, 's3')
    fresh.ping(2, 's3')
    fresh.tick()
    fresh.ping(2, 's2')
    fresh.ping(2, 's3')
    fresh.tick() // s1 dead: s2 takes over with s3 as backup
    expect(fresh.view()).to.deep.equal({number: 3, master: 's2', backup: 's3'})
    fresh.tick()
    fresh.tick() // s2 has not acked view 3: even though s3 went quiet too, view 3 stays
    expect(fresh.view().number).to.equal(3)
  })
})
