/**
 * A packet cache for authoritative UDP answers, as PowerDNS keeps one: the
 * encoded reply, keyed by the query's bytes after its ID (flags, counts,
 * question and OPT, so RD, the EDNS size and the name's spelling all count).
 * A hit costs a copy and a new ID instead of a decode, a lookup and an
 * encode. Any change to the zones (an update) empties it.
 */
export class PacketCache {
  private readonly entries = new Map<string, Buffer>()
  private generation = -1

  constructor(private readonly maxEntries = 10_000) {}

  /** The cache key of a standard query, or undefined for anything else (responses, updates, odd sizes). */
  static keyOf(query: Buffer): string | undefined {
    if (query.length < 12 || query.length > 512) return undefined
    const isResponse = (query[2] & 0x80) !== 0
    const opcode = (query[2] >> 3) & 0xf
    return isResponse || opcode !== 0 ? undefined : query.toString('latin1', 2)
  }

  /** A fresh copy of the cached reply, with the query's ID, if the zones are still at `generation`. */
  reply(key: string, query: Buffer, generation: number): Buffer | undefined {
    if (generation !== this.generation) {
      this.entries.clear()
      this.generation = generation
      return undefined
    }
    const cached = this.entries.get(key)
    if (!cached) return undefined
    const reply = Buffer.from(cached)
    reply[0] = query[0]
    reply[1] = query[1]
    return reply
  }

  store(key: string, reply: Buffer, generation: number): void {
    if (generation !== this.generation) {
      this.entries.clear()
      this.generation = generation
    }
    if (this.entries.size >= this.maxEntries) this.entries.clear()
    this.entries.set(key, reply)
  }
}
