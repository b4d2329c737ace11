/**
 * Runs `worker` over `items` with at most `concurrency` at once. Every item
 * runs even when some fail; the failures are returned, in order.
 */
export async function runPool<T>(
  items: AsyncIterable<T> | Iterable<T>,
  concurrency: number,
  worker: (item: T) => Promise<void>,
): Promise<Array<{item: T; error: unknown}>> {
  const failures: Array<{item: T; error: unknown}> = []
  const running = new Set<Promise<void>>()
  for await (const item of items) {
    const task = worker(item)
      .catch((error: unknown) => {
        failures.push({item, error})
      })
      .finally(() => running.delete(task))
    running.add(task)
    if (running.size >= Math.max(1, concurrency)) await Promise.race(running)
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
