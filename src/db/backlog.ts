/**
 * The replication backlog: the last `size` bytes of the replication stream,
 * so a replica that lost its link can continue (`+CONTINUE`) from its offset
 * instead of taking a whole snapshot again. Offsets count stream bytes; the
 * first byte of the stream has offset 1, as in Redis, and a replica that has
 * processed `n` bytes asks `PSYNC <replid> <n + 1>`.
 */
export class Backlog {
  private readonly ring: Buffer
  /** Stream bytes written so far (the master's replication offset). */
  offset = 0
  private histlen = 0

  constructor(readonly size: number) {
    this.ring = Buffer.alloc(size)
  }

  append(data: Buffer): void {
    this.offset += data.length
    // Only the last `size` bytes can be kept; byte at offset o lives at (o - 1) % size.
    if (data.length > this.size) data = data.subarray(data.length - this.size)
    const at = (this.offset - data.length) % this.size
    const first = Math.min(data.length, this.size - at)
    data.copy(this.ring, at, 0, first)
    if (first < data.length) data.copy(this.ring, 0, first)
    this.histlen = Math.min(this.size, this.histlen + data.length)
  }

  /** Offset of the oldest byte held (Redis's repl_backlog_first_byte_offset). */
  get firstByteOffset(): number {
    return this.offset - this.histlen + 1
  }

  get historyBytes(): number {
    return this.histlen
  }

  /** The bytes from offset `from` (inclusive) to the end, or null if they are no longer all held. */
  since(from: number): Buffer | null {
    if (from < this.firstByteOffset || from > this.offset + 1) return null
    const length = this.offset + 1 - from
    const out = Buffer.allocUnsafe(length)
    const at = (from - 1) % this.size
    const first = Math.min(length, this.size - at)
    this.ring.copy(out, 0, at, at + first)
    if (first < length) this.ring.copy(out, first, 0, length - first)
    return out
  }
}
