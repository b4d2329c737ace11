/**
 * CRC-64/Jones, the checksum at the end of an RDB file (Redis's crc64.c:
 * reflected, polynomial 0xad93d23594c935a9, initial value 0, no final xor).
 * Computed on two 32-bit halves so each byte costs a table look-up, not BigInt
 * arithmetic. crc64('123456789') is 0xe9c6d914c4b8d9ca.
 */
const TABLE_LO = new Uint32Array(256)
const TABLE_HI = new Uint32Array(256)
{
  const reflected = 0x95ac9329ac4bc9b5n // 0xad93d23594c935a9 with its bits reversed
  for (let i = 0; i < 256; i++) {
    let crc = BigInt(i)
    for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ reflected : crc >> 1n
    TABLE_LO[i] = Number(crc & 0xffffffffn)
    TABLE_HI[i] = Number(crc >> 32n)
  }
}

/** A running CRC-64. */
export class Crc64 {
  private lo = 0
  private hi = 0

  update(data: Uint8Array): this {
    let lo = this.lo
    let hi = this.hi
    for (let i = 0; i < data.length; i++) {
      const index = (lo ^ data[i]) & 0xff
      lo = (((lo >>> 8) | (hi << 24)) ^ TABLE_LO[index]) >>> 0
      hi = ((hi >>> 8) ^ TABLE_HI[index]) >>> 0
    }
    this.lo = lo
    this.hi = hi
    return this
  }

  /** The checksum as RDB stores it: 8 bytes, little-endian. */
  digestLE(): Buffer {
    const out = Buffer.allocUnsafe(8)
    out.writeUInt32LE(this.lo, 0)
    out.writeUInt32LE(this.hi, 4)
    return out
  }

  get value(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo)
  }
}
