/**
 * A hashed timer wheel: items filed under the tick they expire in, so that
 * thousands of deadlines cost one interval timer instead of one setTimeout
 * each. Adding and cancelling are O(1); `expire` visits only elapsed ticks.
 * Each item carries its own slot number, which saves a lookup per operation.
 */
export interface WheelItem {
  wheelSlot?: number
}

export class TimerWheel<T extends WheelItem> {
  private readonly buckets = new Map<number, Set<T>>()
  private cursor: number
  private count = 0

  constructor(
    private readonly tickMs: number,
    now: number,
  ) {
    this.cursor = Math.floor(now / tickMs)
  }

  get size(): number {
    return this.count
  }

  add(item: T, at: number): void {
    this.cancel(item)
    const slot = Math.max(Math.ceil(at / this.tickMs), this.cursor + 1)
    let bucket = this.buckets.get(slot)
    if (!bucket) this.buckets.set(slot, (bucket = new Set()))
    bucket.add(item)
    item.wheelSlot = slot
    this.count++
  }

  cancel(item: T): void {
    const slot = item.wheelSlot
    if (slot === undefined) return
    item.wheelSlot = undefined
    const bucket = this.buckets.get(slot)
    if (!bucket?.delete(item)) return
    this.count--
    if (bucket.size === 0) this.buckets.delete(slot)
  }

  /** Removes and returns every item due at or before `now`. */
  expire(now: number): T[] {
    const target = Math.floor(now / this.tickMs)
    const due: T[] = []
    if (this.count === 0) {
      this.cursor = Math.max(this.cursor, target)
      return due
    }
    for (let slot = this.cursor + 1; slot <= target; slot++) {
      const bucket = this.buckets.get(slot)
      if (!bucket) continue
      this.buckets.delete(slot)
      for (const item of bucket) {
        item.wheelSlot = undefined
        due.push(item)
      }
      this.count -= bucket.size
    }
    this.cursor = Math.max(this.cursor, target)
    return due
  }

  clear(): T[] {
    const all: T[] = []
    for (const bucket of this.buckets.values()) for (const item of bucket) {
      item.wheelSlot = undefined
      all.push(item)
    }
    this.buckets.clear()
    this.count = 0
    return all
  }
}
