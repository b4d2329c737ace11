/**
 * Deterministic packet impairment for tests and benchmarks: drops, delays or
 * reorders a fraction of the datagrams that pass through one direction of a
 * socket. The same seed gives the same decisions for the same sequence of
 * datagrams.
 */

export interface LossOptions {
  /** Fraction of datagrams dropped, 0..1. */
  drop?: number
  /** Fraction of datagrams held back for about `delayMs` before they go on, 0..1. */
  delay?: number
  /** Fraction of datagrams swapped with the one after them, 0..1. */
  reorder?: number
  /** Mean extra delay of a delayed datagram, in ms (each one gets 0.5-1.5 times this). Default 30. */
  delayMs?: number
  /** PRNG seed; the same seed repeats the same decisions. Default 1. */
  seed?: number
  /** Which directions to impair: outgoing datagrams, incoming ones, or both (default). */
  sides?: 'both' | 'send' | 'receive'
}

/** mulberry32: a small, fast, well-mixed 32-bit PRNG; plenty for test impairments. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

interface Held<T> {
  item: T
  releaseAt: number
}

/** One impaired direction. Datagrams leave through `forward`, now or later. */
export class LossyPath<T> {
  private readonly random: () => number
  private readonly delayed: Held<T>[] = []
  private reordered: Held<T> | undefined
  dropped = 0

  constructor(
    private readonly options: LossOptions,
    seed: number,
    private readonly forward: (item: T) => void,
  ) {
    this.random = seededRandom(seed)
  }

  /** True while datagrams are held back and `tick` must keep being called. */
  get holding(): boolean {
    return this.delayed.length > 0 || this.reordered !== undefined
  }

  pass(item: T, now: number): void {
    const {drop = 0, delay = 0, reorder = 0, delayMs = 30} = this.options
    const roll = this.random()
    if (roll < drop) {
      this.dropped++
      return
    }
    if (roll < drop + delay) {
      this.delayed.push({item, releaseAt: now + delayMs * (0.5 + this.random())})
      return
    }
    const swapped = this.reordered
    if (roll < drop + delay + reorder && swapped === undefined) {
      this.reordered = {item, releaseAt: now}
      return
    }
    this.forward(item)
    if (swapped) {
      this.reordered = undefined
      this.forward(swapped.item)
    }
  }

  /** Releases what is due; a reordered datagram with no successor goes on at the next tick. */
  tick(now: number): void {
    if (this.reordered && this.reordered.releaseAt < now) {
      const {item} = this.reordered
      this.reordered = undefined
      this.forward(item)
    }
    if (this.delayed.length === 0) return
    const keep: Held<T>[] = []
    const due: Held<T>[] = []
    for (const held of this.delayed) (held.releaseAt <= now ? due : keep).push(held)
    this.delayed.length = 0
    this.delayed.push(...keep)
    for (const held of due) this.forward(held.item)
  }

  clear(): void {
    this.delayed.length = 0
    this.reordered = undefined
  }
}
