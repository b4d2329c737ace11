/**
 * Serialises jobs per key: a job for a key starts once the previous job for
 * that key has settled, whether it succeeded or failed. Jobs for different
 * keys run side by side. The compare-and-set of the router and of the
 * embedded store both rest on it.
 */
export class KeyLock {
  private readonly tails = new Map<string, Promise<unknown>>()

  async run<T>(id: string, job: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(id) ?? Promise.resolve()
    const mine = previous.then(job, job)
    const tail = mine.catch(() => undefined)
    this.tails.set(id, tail)
    try {
      return await mine
    } finally {
      if (this.tails.get(id) === tail) this.tails.delete(id)
    }
  }
}
