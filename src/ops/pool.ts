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
