import {expect} from 'chai'

import {type Block, Picker} from '../../src/torrent/picker.js'

/** A seeded PRNG (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed
  return () => {
    a |= 0
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const KiB = 1024

function picker(pieces: number, options: Partial<ConstructorParameters<typeof Picker>[0]> = {}): Picker {
  return new Picker({pieces, pieceLength: 64 * KiB, length: pieces * 64 * KiB - 1000, random: seeded(42), ...options})
}

/** Delivers blocks as if the peer answered instantly at `now`. */
function deliver(p: Picker, id: string, blocks: Block[], now: number): number[] {
  const done: number[] = []
  for (const block of blocks) if (p.received(id, block, now).pieceDone) done.push(block.index)
  return done
}

describe('torrent piece picker', () => {
  it('splits pieces into 16 KiB blocks, the last piece short', () => {
    const p = picker(3)
    p.addPeer('a')
    p.peerHaveAll('a')
    const blocks = p.next('a', 0)
    expect(blocks.every((b) => b.length <= 16 * KiB && b.begin % (16 * KiB) === 0)).to.equal(true)
    const last = blocks.filter((b) => b.index === 2)
    expect(last.reduce((sum, b) => sum + b.length, 0)).to.equal(64 * KiB - 1000)
    expect(new Set(blocks.map((b) => `${b.index}:${b.begin}`)).size).to.equal(blocks.length)
  })

  it('starts with a random piece (seeded), then goes rarest first', () => {
    const firsts = new Set<number>()
    for (let seed = 1; seed <= 20; seed++) {
      const p = picker(50, {random: seeded(seed)})
      p.addPeer('a')
      p.peerHaveAll('a')
      firsts.add(p.next('a', 0)[0].index)
    }
    expect(firsts.size, 'different seeds start at different pieces').to.be.greaterThan(5)
    // Same seed, same choice.
    const one = picker(50, {random: seeded(7)})
    const two = picker(50, {random: seeded(7)})
    for (const p of [one, two]) {
      p.addPeer('a')
      p.peerHaveAll('a')
    }
    expect(one.next('a', 0)[0].index).to.equal(two.next('a', 0)[0].index)

    // After the first piece, the rarest: piece 7 is held by one peer, the rest by three.
    const p = picker(10, {maxDepth: 4, minDepth: 4})
    for (const id of ['a', 'b', 'c']) p.addPeer(id)
    p.peerHaveAll('a')
    p.peerHaveAll('b')
    for (let i = 0; i < 10; i++) if (i !== 7) p.peerHave('c', i)
    const first = p.next('a', 0)
    const firstPiece = first[0].index
    deliver(p, 'a', first, 1)
    p.verified(firstPiece)
    expect(firstPiece, 'the seeded first pick is not the rare piece').to.not.equal(7)
    const next = p.next('a', 2)
    expect(next.map((b) => b.index)).to.deep.equal([7, 7, 7, 7])
  })

  it('finishes open pieces before starting new ones', () => {
    const p = picker(10, {minDepth: 2, maxDepth: 2})
    p.addPeer('a')
    p.addPeer('b')
    p.peerHaveAll('a')
    p.peerHaveAll('b')
    const a = p.next('a', 0)
    expect(a).to.have.length(2)
    const b = p.next('b', 0)
    // b continues a's piece (4 blocks of 16 KiB in 64 KiB).
    expect(b.map((x) => x.index)).to.deep.equal([a[0].index, a[0].index])
  })

  it('enters endgame: an idle peer doubles up on blocks in flight, and the first copy cancels the other', () => {
    const p = picker(1, {length: 64 * KiB, minDepth: 8, maxDepth: 8})
    p.addPeer('slow')
    p.addPeer('fast')
    p.peerHaveAll('slow')
    p.peerHaveAll('fast')
    const slow = p.next('slow', 0)
    expect(slow).to.have.length(4)
    expect(p.endgame).to.equal(true)
    const fast = p.next('fast', 0)
    expect(fast.map((b) => b.begin)).to.deep.equal(slow.map((b) => b.begin))
    const result = p.received('fast', fast[0], 5)
    expect(result).to.deep.equal({wanted: true, pieceDone: false, cancel: ['slow']})
    // The slow copy arriving later is not wanted.
    expect(p.received('slow', slow[0], 6).wanted).to.equal(false)
    expect(deliver(p, 'fast', fast.slice(1), 7)).to.deep.equal([0])
  })

  it('gives a fast, near peer a deeper queue than a slow, far one', () => {
    const p = picker(4000, {length: 4000 * 64 * KiB})
    p.addPeer('near')
    p.addPeer('far')
    p.peerHaveAll('near')
    p.peerHaveAll('far')
    // near: 1 ms round trips, 40 MB/s; far: 100 ms round trips, 1 MB/s. Each peer
    // answers its requests in order; the next batch is asked for when the last arrives.
    const clock: Record<string, number> = {near: 0, far: 0}
    const run = (id: string, rtt: number, bytesPerMs: number): void => {
      const now = clock[id]
      const blocks = p.next(id, now)
      let t = now
      for (const block of blocks) {
        t = Math.max(t + block.length / bytesPerMs, now + rtt)
        p.received(id, block, t)
      }
      clock[id] = t
    }
    while (clock.near < 2_000) run('near', 1, 40_000)
    while (clock.far < 2_000) run('far', 100, 1_000)
    const near = p.stats('near', clock.near)!
    const far = p.stats('far', clock.far)!
    expect(near.rtt).to.be.lessThan(far.rtt)
    expect(near.rate).to.be.greaterThan(far.rate * 10)
    expect(p.depth('near', clock.near)).to.be.greaterThan(p.depth('far', clock.far) * 4)
    expect(near.downloaded).to.be.greaterThan(far.downloaded * 10)
  })

  it('names the sole sender of a bad piece, and gives a piece that failed from several peers to one peer alone', () => {
    const p = picker(4, {minDepth: 2, maxDepth: 2})
    p.addPeer('a')
    p.addPeer('b')
    p.peerHaveAll('a')
    p.peerHaveAll('b')
    const a = p.next('a', 0)
    const b = p.next('b', 0)
    const index = a[0].index
    expect(b.every((x) => x.index === index)).to.equal(true)
    deliver(p, 'a', a, 1)
    expect(deliver(p, 'b', b, 1)).to.deep.equal([index])
    expect(p.failed(index).sort()).to.deep.equal(['a', 'b'])
    // Re-fetched from one peer alone.
    const again = p.next('a', 2)
    expect(again.every((x) => x.index === index)).to.equal(true)
    expect(p.next('b', 2).some((x) => x.index === index)).to.equal(false)
    deliver(p, 'a', again, 3)
    deliver(p, 'a', p.next('a', 3), 4)
    expect(p.failed(index)).to.deep.equal(['a'])
  })

  it('releases the requests of a choking or departed peer, and expires stale ones', () => {
    const p = picker(2, {minDepth: 4, maxDepth: 4})
    p.addPeer('a')
    p.addPeer('b')
    p.peerHaveAll('a')
    p.peerHave('b', 0)
    p.peerHave('b', 1)
    const a = p.next('a', 0)
    expect(a).to.have.length(4)
    p.releaseAll('a')
    const b = p.next('b', 10)
    expect(b.map((x) => `${x.index}:${x.begin}`)).to.include.members(a.map((x) => `${x.index}:${x.begin}`))
    expect(p.expire('b', 10 + 5_000, 10_000)).to.have.length(0)
    expect(p.expire('b', 10 + 10_000, 10_000)).to.have.length(4)
    p.removePeer('b')
    expect(p.suppliable()).to.equal(2)
    p.removePeer('a')
    expect(p.suppliable()).to.equal(0)
  })

  it('skips pieces already verified (resume) and reports completion', () => {
    const p = picker(3, {have: (i) => i !== 1})
    p.addPeer('a')
    p.peerHaveAll('a')
    const blocks = p.next('a', 0)
    expect(new Set(blocks.map((b) => b.index))).to.deep.equal(new Set([1]))
    expect(deliver(p, 'a', blocks, 1)).to.deep.equal([1])
    p.verified(1)
    expect(p.complete).to.equal(true)
    expect(p.bitfield()).to.deep.equal(Buffer.from([0xe0]))
  })
})
