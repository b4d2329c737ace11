/** Runs async sections one at a time, in arrival order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(section: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(section)
    this.tail = result.catch(() => {})
    return result
  }
}
