// The worker pool and the look-ahead stage in front of it (rclone's
// transfers and checkers), driven by hand-resolved promises so every step
// is deterministic.
import {expect} from 'chai'

import {prefetch, readAhead, runPool} from '../../src/base/index.js'

/** A promise with its resolve and reject exposed. */
function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((yes, no) => {
    resolve = yes
    reject = no
  })
  return {promise, resolve, reject}
}

/** Lets every pending promise callback run. */
const settle = () => new Promise((resolve) => setImmediate(resolve))

describe('prefetch: preparing items ahead of their consumer', () => {
  it('keeps `depth` preparations running while the consumer holds the first item, and no more', async () => {
    const started: number[] = []
    const pending = new Map<number, ReturnType<typeof deferred<string>>>()
    const ahead = prefetch([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 3, (n) => {
      started.push(n)
      const d = deferred<string>()
      pending.set(n, d)
      return d.promise
    })
    const first = ahead.next()
    await settle()
    expect(started).to.deep.equal([0, 1, 2])
    pending.get(1)!.resolve('one')
    pending.get(0)!.resolve('zero')
    expect((await first).value).to.deep.equal({item: 0, prepared: 'zero'})
    // The consumer now holds item 0: 1 and 2 stay prepared or in flight, nothing more starts.
    await settle()
    expect(started).to.deep.equal([0, 1, 2])
    const second = ahead.next()
    await settle()
    expect(started).to.deep.equal([0, 1, 2, 3])
    expect((await second).value).to.deep.equal({item: 1, prepared: 'one'})
    await ahead.return(undefined)
  })

  it('yields items in order, a failed preparation as undefined, and ends with the source', async () => {
    const seen: Array<{item: number; prepared: number | undefined}> = []
    const delays = [30, 0, 10, 0, 20]
    for await (const entry of prefetch(delays.keys(), 4, async (n) => {
      await new Promise((resolve) => setTimeout(resolve, delays[n]))
      if (n === 3) throw new Error('no link')
      return n * 10
    })) {
      seen.push(entry)
    }

    expect(seen).to.deep.equal([
      {item: 0, prepared: 0},
      {item: 1, prepared: 10},
      {item: 2, prepared: 20},
      {item: 3, prepared: undefined},
      {item: 4, prepared: 40},
    ])
  })

  it('passes a failure of the source itself to the consumer', async () => {
    async function* source() {
      yield 1
      throw new Error('listing failed')
    }

    const got: number[] = []
    let error: Error | undefined
    try {
      for await (const {item} of prefetch(source(), 8, async (n) => n)) got.push(item)
    } catch (caught) {
      error = caught as Error
    }

    expect(got).to.deep.equal([1])
    expect(error?.message).to.equal('listing failed')
  })

  it('feeds runPool: with 2 transfers and 4 checkers, every item runs once and at most 2 at a time', async () => {
    let running = 0
    let most = 0
    const done: number[] = []
    const failures = await runPool(
      prefetch(Array.from({length: 12}, (_, i) => i), 4, async (n) => `link-${n}`),
      2,
      async ({item, prepared}) => {
        expect(prepared).to.equal(`link-${item}`)
        running++
        most = Math.max(most, running)
        await new Promise((resolve) => setTimeout(resolve, 2))
        running--
        done.push(item)
      },
    )
    expect(failures).to.deep.equal([])
    expect(done.sort((a, b) => a - b)).to.deep.equal(Array.from({length: 12}, (_, i) => i))
    expect(most).to.equal(2)
  })

  it('runPool: a released worker frees its slot; at most `lingering` released ones finish meanwhile; their failures count', async () => {
    // Each worker holds its slot for its "transfer", releases, then "commits" until the test lets it go.
    const commits: Array<() => void> = []
    let holding = 0
    let mostHolding = 0
    let alive = 0
    let mostAlive = 0
    const started: number[] = []
    const pool = runPool(
      Array.from({length: 10}, (_, i) => i),
      2,
      async (n, release) => {
        started.push(n)
        alive++
        holding++
        mostAlive = Math.max(mostAlive, alive)
        mostHolding = Math.max(mostHolding, holding)
        await new Promise((resolve) => setImmediate(resolve))
        holding--
        release()
        release() // twice is harmless
        await new Promise<void>((resolve) => commits.push(resolve))
        alive--
        if (n === 7) throw new Error('commit 7 failed')
      },
      3,
    )
    // Two slots plus three lingering: five started, then the pool waits for a commit.
    const settle = async () => {
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
    }

    await settle()
    expect(started).to.deep.equal([0, 1, 2, 3, 4])
    while (commits.length > 0) {
      commits.shift()!()
      await settle()
    }

    const failures = await pool
    expect(started).to.have.length(10)
    expect(mostHolding).to.equal(2)
    expect(mostAlive).to.equal(5)
    expect(failures.map((f) => [f.item, (f.error as Error).message])).to.deep.equal([[7, 'commit 7 failed']])
  })
})

describe('readAhead: a source read ahead of its consumer', () => {
  /** A source that yields 0..count-1 and records how far it has been read. */
  function counting(count: number, failAt?: number) {
    const read: number[] = []
    async function* source(): AsyncGenerator<number> {
      for (let i = 0; i < count; i++) {
        if (i === failAt) throw new Error(`source failed at ${i}`)
        read.push(i)
        yield i
        await settle()
      }
    }

    return {read, items: source()}
  }

  it('reads up to `size` items while the consumer holds the first, no more, and yields them all in order', async () => {
    const {read, items} = counting(20)
    const ahead = readAhead(items, 5)
    expect((await ahead.next()).value).to.equal(0)
    for (let i = 0; i < 20; i++) await settle()
    // Item 0 is with the consumer; 1..5 fill the buffer; reading stops there.
    expect(read).to.deep.equal([0, 1, 2, 3, 4, 5])
    const rest: number[] = []
    for await (const n of ahead) rest.push(n)
    expect(rest).to.deep.equal(Array.from({length: 19}, (_, i) => i + 1))
  })

  it('passes a failure of the source to the consumer after the items read before it', async () => {
    const {items} = counting(10, 3)
    const got: number[] = []
    let failure: unknown
    try {
      for await (const n of readAhead(items, 100)) got.push(n)
    } catch (error) {
      failure = error
    }

    expect(got).to.deep.equal([0, 1, 2])
    expect((failure as Error).message).to.equal('source failed at 3')
  })

  it('stops reading the source when the consumer stops early', async () => {
    const {read, items} = counting(1000)
    for await (const n of readAhead(items, 4)) if (n === 1) break
    const after = read.length
    for (let i = 0; i < 10; i++) await settle()
    expect(read.length).to.equal(after)
    expect(after).to.be.at.most(7)
  })
})
