/**
 * LZF decompression (liblzf's lzf_d.c), for the compressed strings in RDB
 * files: redis-server compresses string values longer than 20 bytes when
 * `rdbcompression yes` (its default). The one npm package for LZF (lzfjs)
 * builds its output in a plain JS array one byte at a time and has had one
 * release; the format is small enough to decode here into a buffer of the
 * known length, with bounds checks that make corrupt input an error.
 */

/** Decompresses `input` into exactly `outLength` bytes; throws on corrupt input. */
export function lzfDecompress(input: Buffer, outLength: number): Buffer {
  const out = Buffer.allocUnsafe(outLength)
  let ip = 0
  let op = 0
  while (ip < input.length) {
    const ctrl = input[ip++]
    if (ctrl < 32) {
      // a literal run of ctrl + 1 bytes
      const run = ctrl + 1
      if (op + run > outLength) throw new Error('LZF: output overrun')
      if (ip + run > input.length) throw new Error('LZF: input overrun')
      input.copy(out, op, ip, ip + run)
      op += run
      ip += run
      continue
    }
    // a back reference: length in the top 3 bits (7 = one more length byte), offset in 13 bits
    let len = ctrl >> 5
    if (ip >= input.length) throw new Error('LZF: input overrun')
    if (len === 7) {
      len += input[ip++]
      if (ip >= input.length) throw new Error('LZF: input overrun')
    }
    const ref = op - ((ctrl & 0x1f) << 8) - 1 - input[ip++]
    len += 2
    if (op + len > outLength) throw new Error('LZF: output overrun')
    if (ref < 0) throw new Error('LZF: invalid back reference')
    // byte by byte: a reference may overlap the bytes it produces
    for (let i = 0; i < len; i++) out[op++] = out[ref + i]
  }
  if (op !== outLength) throw new Error(`LZF: decompressed ${op} bytes, expected ${outLength}`)
  return out
}
