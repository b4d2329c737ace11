/**
 * Versions and the record header.
 *
 * A version is a hybrid logical clock reading issued by the router:
 * `wall-clock ms × 1024 + logical counter`, an integer below 2^53 until the
 * year 2248. It never goes backwards: the clock takes the larger of the wall
 * clock and the last issued value plus one, and it advances past every
 * version it observes on a read. Last writer (largest version) wins.
 */

export const LOGICAL_BITS = 1024

export interface Versioned {
  version: number
  /** A tombstone: the key was deleted at `version`. */
  tomb: boolean
}

export class HybridClock {
  private last = 0

  /** The next version, larger than every version issued or observed. */
  next(): number {
    this.last = Math.max(Date.now() * LOGICAL_BITS, this.last + 1)
    return this.last
  }

  observe(version: number): void {
    if (version > this.last) this.last = version
  }

  get current(): number {
    return this.last
  }
}

/** Milliseconds since the epoch at which a version was issued. */
export function versionTime(version: number): number {
  return Math.floor(version / LOGICAL_BITS)
}

export const HEADER_BYTES = 9

/** Header bytes: tombstone flag, then the version as unsigned 64-bit big-endian. */
export function encodeHeader(version: number, tomb: boolean): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES)
  buf[0] = tomb ? 1 : 0
  // Two 32-bit halves: the same bytes as writeBigUInt64BE for a safe integer, without a BigInt per write.
  buf.writeUInt32BE(Math.floor(version / 0x1_0000_0000), 1)
  buf.writeUInt32BE(version % 0x1_0000_0000, 5)
  return buf
}

export function decodeHeader(buf: Buffer, offset = 0): Versioned {
  return {tomb: buf[offset] === 1, version: buf.readUInt32BE(offset + 1) * 0x1_0000_0000 + buf.readUInt32BE(offset + 5)}
}

/** Is `a` newer than `b` (a missing side is older than anything)? */
export function newer(a: Versioned | null | undefined, b: Versioned | null | undefined): boolean {
  if (!a) return false
  if (!b) return true
  return a.version > b.version
}
