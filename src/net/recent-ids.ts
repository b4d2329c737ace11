/**
 * Duplicate suppression with bounded memory: for each sender (address and
 * port) the ids of its most recent `perSender` distinct packets, and at most
 * `senders` senders, the least recently heard evicted first.
 *
 * Membership is exact and order-free, so random starting ids and wrap-around
 * at 2^32 need no special case. The bound is what makes it safe: a sender
 * whose ids never run more than `perSender / 2` ahead of its oldest
 * unacknowledged packet (ReliableSocket's `maxIdSpan`) can never have a
 * retransmission outlive the memory of its first copy.
 */
export class RecentIds {
  private readonly ring: number[] = []
  private readonly set = new Set<number>()
  private next = 0

  constructor(private readonly capacity: number) {}

  has(id: number): boolean {
    return this.set.has(id)
  }

  add(id: number): void {
    if (this.ring.length < this.capacity) {
      this.ring.push(id)
    } else {
      this.set.delete(this.ring[this.next])
      this.ring[this.next] = id
      this.next = (this.next + 1) % this.capacity
    }
    this.set.add(id)
  }

  get size(): number {
    return this.set.size
  }
}

export class DuplicateFilter {
  private readonly senders = new Map<string, RecentIds>()
  private lastKey = ''
  private last: RecentIds | undefined
  private total = 0

  /**
   * @param perSender ids remembered per sender
   * @param maxSenders senders remembered
   * @param maxTotal ids remembered across all senders; the least recently
   *   heard senders are forgotten first when it is exceeded
   */
  constructor(
    private readonly perSender: number,
    private readonly maxSenders: number,
    private readonly maxTotal: number = Number.POSITIVE_INFINITY,
  ) {}

  /** The memory of one sender, created on first use and marked most recently heard. */
  private sender(key: string): RecentIds {
    if (key === this.lastKey && this.last) return this.last
    let ids = this.senders.get(key)
    if (ids) {
      this.senders.delete(key)
    } else {
      ids = new RecentIds(this.perSender)
      if (this.senders.size >= this.maxSenders) this.evictOldest()
    }
    this.senders.set(key, ids)
    this.lastKey = key
    this.last = ids
    return ids
  }

  seen(key: string, id: number): boolean {
    return this.sender(key).has(id)
  }

  remember(key: string, id: number): void {
    const ids = this.sender(key)
    const before = ids.size
    ids.add(id)
    this.total += ids.size - before
    while (this.total > this.maxTotal && this.senders.size > 1) this.evictOldest()
  }

  private evictOldest(): void {
    const [key, ids] = this.senders.entries().next().value as [string, RecentIds]
    this.senders.delete(key)
    this.total -= ids.size
    if (key === this.lastKey) {
      this.lastKey = ''
      this.last = undefined
    }
  }

  get senderCount(): number {
    return this.senders.size
  }
}
