/**
 * Runs `worker` over `items` with at most `concurrency` at once. Every item
 * runs even when some fail; the failures are returned, in order.
 *
 * A worker may call `release()` to give its slot to the next item before it
 * finishes (a download whose bytes are in and only has its local commit
 * left); up to `lingering` released workers may still be finishing, beyond
 * that the pool waits for them. Their failures count like any other.
 */
export async function runPool<T>(
  items: AsyncIterable<T> | Iterable<T>,
  concurrency: number,
  worker: (item: T, release: () => void) => Promise<void>,
  lingering = 0,
): Promise<Array<{item: T; error: unknown}>> {
  const failures: Array<{item: T; error: unknown}> = []
  const limit = Math.max(1, concurrency)
  const running = new Set<Promise<void>>()
  let holding = 0
  let wake: (() => void) | null = null
  const changed = (): void => {
    const resume = wake
    wake = null
    resume?.()
  }

  for await (const item of items) {
    let held = true
    holding++
    const release = (): void => {
      if (!held) return
      held = false
      holding--
      changed()
    }

    const task: Promise<void> = worker(item, release)
      .catch((error: unknown) => {
        failures.push({item, error})
      })
      .finally(() => {
        release()
        running.delete(task)
        changed()
      })
    running.add(task)
    while (holding >= limit || running.size >= limit + Math.max(0, lingering)) {
      await new Promise<void>((resolve) => (wake = resolve))
    }
  }

  await Promise.all(running)
  return failures
}

/**
 * Yields `items` in order, each with what `prepare` made of it, keeping up
 * to `depth` preparations running ahead of the consumer (rclone's checkers):
 * the round trips of the next files overlap the work on this one, and no
 * more than `depth` items are held. A failed preparation yields `undefined`
 * (the consumer does the work itself and reports any error); a failure of
 * `items` itself is thrown to the consumer.
 */
export async function* prefetch<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  depth: number,
  prepare: (item: T) => Promise<R>,
): AsyncGenerator<{item: T; prepared: R | undefined}> {
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : toAsync(items)[Symbol.asyncIterator]()
  const queue: Array<Promise<{item: T; prepared: R | undefined} | undefined>> = []
  let pulling: Promise<unknown> = Promise.resolve()
  let ended = false
  const fill = () => {
    while (!ended && queue.length < Math.max(1, depth)) {
      // Pulls are chained: the source is read in order, one item at a time.
      const next = pulling.then(() => iterator.next())
      pulling = next.catch(() => {})
      const ready = next.then(async (result) => {
        if (result.done) {
          ended = true
          return undefined
        }

        const prepared = await prepare(result.value).catch(() => undefined)
        return {item: result.value, prepared}
      })
      ready.catch(() => {}) // Awaited below, in order; this only keeps an early failure from counting as unhandled.
      queue.push(ready)
    }
  }

  try {
    for (;;) {
      fill()
      const head = await queue.shift()
      if (head === undefined) return
      yield head
    }
  } finally {
    ended = true
    await iterator.return?.()
  }
}

async function* toAsync<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items
}

/**
 * Yields `items` in order while reading up to `size` of them ahead of the
 * consumer, so a slow source (a listing that pages through an API) keeps
 * going while the consumer works: the next page or folder is listed during
 * the transfers of this one instead of after them. A failure of `items` is
 * thrown to the consumer after the items read before it.
 */
export async function* readAhead<T>(items: AsyncIterable<T>, size: number): AsyncGenerator<T> {
  const iterator = items[Symbol.asyncIterator]()
  const buffer: T[] = []
  let finished = false
  let stopped = false
  let failure: {error: unknown} | undefined
  let itemReady: (() => void) | null = null
  let roomReady: (() => void) | null = null
  const wake = (which: 'item' | 'room'): void => {
    const resume = which === 'item' ? itemReady : roomReady
    if (which === 'item') itemReady = null
    else roomReady = null
    resume?.()
  }

  const reading = (async () => {
    try {
      while (!stopped) {
        if (buffer.length >= Math.max(1, size)) {
          await new Promise<void>((resolve) => (roomReady = resolve))
          continue
        }

        const next = await iterator.next()
        if (next.done) break
        buffer.push(next.value)
        wake('item')
      }
    } catch (error) {
      failure = {error}
    } finally {
      finished = true
      wake('item')
    }
  })()

  try {
    for (;;) {
      if (buffer.length > 0) {
        const item = buffer.shift() as T
        wake('room')
        yield item
        continue
      }

      if (finished) {
        if (failure) throw failure.error
        return
      }

      await new Promise<void>((resolve) => (itemReady = resolve))
    }
  } finally {
    stopped = true
    wake('room')
    await reading
    await iterator.return?.()
  }
}
