import {expect} from 'chai'

import {ReplicaRanking} from '../../../src/backends/cluster/pieces.js'

describe('cluster pieces: the order replicas are asked in', () => {
  it('fastest first without a piece index; with one, the live replicas take turns and failed ones come last', () => {
    const ranking = new ReplicaRanking()
    ranking.record('b:1', 5)
    ranking.record('a:1', 50)
    expect(ranking.order(['a:1', 'b:1'])).to.deep.equal(['b:1', 'a:1'])
    expect([0, 1, 2, 3].map((index) => ranking.order(['a:1', 'b:1', 'c:1'], index)[0])).to.deep.equal(['a:1', 'b:1', 'c:1', 'a:1'])
    ranking.fail('b:1')
    expect(ranking.order(['a:1', 'b:1', 'c:1'], 0)).to.deep.equal(['a:1', 'c:1', 'b:1'])
    expect(ranking.order(['a:1', 'b:1', 'c:1'], 1)).to.deep.equal(['c:1', 'a:1', 'b:1'])
    // One live replica left: it goes first whatever the index, the failed one after it.
    ranking.fail('c:1')
    expect(ranking.order(['b:1', 'c:1', 'a:1'], 1)).to.deep.equal(['a:1', 'b:1', 'c:1'])
  })
})
