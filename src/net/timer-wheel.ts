/**
 * A hashed timer wheel: items filed under the tick they expire in, so that
 * thousands of deadlines cost one interval timer instead of one setTimeout
 * each. Adding and cancelling are O(1); `expire` visits only elapsed ticks.
 */
export class TimerWheel<T> {
  private readonly buckets = new Map<number, Set<T>>()
  private readonly slotOf = new Map<T, number>()
  private cursor: number

  constructor(
    private readonly tickMs: number,
    now: number,
  ) {
    this.cursor = Math.floor(now / tickMs)
  }

  get size(): number {
    return this.slotOf.size
  }

  add(item: T, at: number): void {
    this.cancel(item)
    const slot = Math.max(Math.ceil(at / this.tickMs), this.cursor + 1)
    let bucket = this.buckets.get(slot)
    if (!bucket) this.buckets.set(slot, (bucket = new Set()))
    bucket.add(item)
    this.slotOf.set(item, slot)
  }

  cancel(item: T): void {
    const slot = this.slotOf.get(item)
    if (slot === undefined) return
    this.slotOf.delete(item)
    const bucket = this.buckets.get(slot)
    bucket?.delete(item)
    if (bucket?.size === 0) this.buckets.delete(slot)
  }

  /** Removes and returns every item due at or before `now`. */
  expire(now: number): T[] {
    const target = Math.floor(now / this.tickMs)
    const due: T[] = []
    if (this.slotOf.size === 0) {
      this.cursor = target
      return due
    }
    for (let slot = this.cursor + 1; slot <= target; slot++) {
      const bucket = this.buckets.get(slot)
      if (!bucket) continue
      this.buckets.delete(slot)
      for (const item of bucket) {
        this.slotOf.delete(item)
        due.push(item)
      }
    }
    this.cursor = Math.max(this.cursor, target)
    return due
  }

  clear(): T[] {
    const all = [...this.slotOf.keys()]
    this.buckets.clear()
    this.slotOf.clear()
    return all
  }
}
