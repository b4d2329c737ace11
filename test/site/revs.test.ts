import {expect} from 'chai'

import {revs, backoffMs, startSequence, step} from '../../src/site/index.js'

describe('site: revision trees', () => {
  const tree = (): revs.RevTree => ({
    '1-a': {p: null, d: 0},
    '2-b': {p: '1-a', d: 0},
    '2-c': {p: '1-a', d: 0},
    '3-d': {p: '2-b', d: 1},
  })

  it('picks a live leaf over a longer deleted one, then the higher generation, then the higher hash', () => {
    expect(revs.winner(tree())).to.equal('2-c')
    expect(revs.winner({...tree(), '3-e': {p: '2-c', d: 0}})).to.equal('3-e')
    expect(revs.winner({'1-a': {p: null, d: 0}, '1-f': {p: null, d: 0}, '1-b': {p: null, d: 0}})).to.equal('1-f')
  })

  it('lets a deleted leaf win only when every leaf is deleted', () => {
    const all = {...tree(), '3-e': {p: '2-c', d: 1 as const}}
    expect(revs.winner(all)).to.equal('3-e')
    expect(revs.conflicts(all)).to.deep.equal([])
  })

  it('lists live losers as _conflicts, best first', () => {
    const t = {...tree(), '2-z': {p: '1-a', d: 0 as const}, '3-e': {p: '2-c', d: 0 as const}}
    expect(revs.conflicts(t)).to.deep.equal(['2-z'])
  })

  it('merges a revision path once (new_edits:false is idempotent) and gives _revisions back', () => {
    const path = revs.pathOf('3-x', {start: 3, ids: ['x', 'c', 'a']})!
    const once = revs.mergePath(tree(), path, false)
    expect(once.added).to.equal(true)
    expect(revs.revisions(once.tree, '3-x')).to.deep.equal({start: 3, ids: ['x', 'c', 'a']})
    expect(revs.mergePath(once.tree, path, false).added).to.equal(false)
    expect(revs.pathOf('3-x', {start: 2, ids: ['x']})).to.equal(null)
    expect(revs.pathOf('x-3', undefined)).to.equal(null)
  })

  it('hashes a new revision from parent, deletion and content, whatever the key order', () => {
    expect(revs.newRev('1-a', false, {x: 1, y: 2})).to.equal(revs.newRev('1-a', false, {y: 2, x: 1}))
    expect(revs.newRev('1-a', false, {x: 1})).to.match(/^2-[0-9a-f]{32}$/)
    expect(revs.newRev('1-a', true, {x: 1})).to.not.equal(revs.newRev('1-a', false, {x: 1}))
  })
})

describe('site: the poller and checkpoints', () => {
  const config = {pollMs: 100, maxBackoffMs: 1000}

  it('backs off exponentially from the poll interval up to the cap, and one success resets it', () => {
    let state = {state: 'unknown' as const, failures: 0} as ReturnType<typeof step>['next']
    const waits: number[] = []
    const changes: boolean[] = []
    for (let i = 0; i < 6; i++) {
      const next = step(state, false, config)
      waits.push(next.waitMs)
      changes.push(next.changed)
      state = next.next
    }
    expect(waits).to.deep.equal([100, 200, 400, 800, 1000, 1000])
    expect(changes).to.deep.equal([true, false, false, false, false, false])
    const back = step(state, true, config)
    expect(back).to.deep.equal({next: {state: 'up', failures: 0}, waitMs: 100, changed: true})
    expect(backoffMs(1000, config)).to.equal(1000)
  })

  it('starts where both checkpoints agree, else from 0', () => {
    const cp = (session: string, seq: number, history: Array<[string, number]> = []) => ({
      session_id: session,
      source_last_seq: seq,
      replication_id_version: 3,
      history: [[session, seq] as [string, number], ...history].map(([s, q]) => ({session_id: s, recorded_seq: q, start_time: '', end_time: '', docs_read: 0, docs_written: 0})),
    })
    expect(startSequence(cp('s1', 40), cp('s1', 40))).to.equal(40)
    expect(startSequence(cp('s2', 50, [['s1', 40]]), cp('s1', 40))).to.equal(40)
    expect(startSequence(cp('s2', 50), cp('s1', 40))).to.equal(0)
    expect(startSequence(undefined, cp('s1', 40))).to.equal(0)
    expect(startSequence(cp('s1', 40), undefined)).to.equal(0)
  })
})
