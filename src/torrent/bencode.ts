/**
 * Bencode (BEP 3) on top of the `bencode` package, made strict.
 *
 * The package's decoder is lenient (trailing bytes, `i-0e`, truncated input
 * are accepted or half-read), reads dictionary keys as UTF-8 (a scrape's
 * binary info-hash keys do not survive) and cannot tell where a value sits in
 * its input, while a torrent's info-hash is the SHA-1 of the info dictionary's
 * bytes exactly as found. So decoding is done here, strictly, with
 * `dictSpans` giving each top-level key's raw value; encoding is the
 * package's.
 */
import bencode from 'bencode'

/** Malformed bencode; `offset` is where the parser stopped. */
export class BencodeError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset}`)
    this.name = 'BencodeError'
  }
}

const MAX_DEPTH = 256
const I = 0x69
const L = 0x6c
const D = 0x64
const E = 0x65
const COLON = 0x3a

function isDigit(byte: number | undefined): boolean {
  return byte !== undefined && byte >= 0x30 && byte <= 0x39
}

/** Reads the digits of a string length at `pos`; returns [length, index of the byte after ':']. */
function stringHeader(buf: Buffer, pos: number): [number, number] {
  let end = pos
  while (isDigit(buf[end])) end++
  if (end === pos || buf[end] !== COLON) throw new BencodeError('expected a string length', pos)
  if (end - pos > 1 && buf[pos] === 0x30) throw new BencodeError('leading zero in a string length', pos)
  if (end - pos > 15) throw new BencodeError('string length too large', pos)
  const length = Number(buf.toString('latin1', pos, end))
  const start = end + 1
  if (start + length > buf.length) throw new BencodeError('string runs past the end', pos)
  return [length, start]
}

/** Index just past the bencoded value that starts at `pos`; throws BencodeError when malformed. */
export function valueEnd(buf: Buffer, pos = 0, depth = 0): number {
  if (depth > MAX_DEPTH) throw new BencodeError('nesting too deep', pos)
  const byte = buf[pos]
  if (byte === undefined) throw new BencodeError('unexpected end of data', pos)
  if (byte === I) {
    const end = buf.indexOf(E, pos + 1)
    if (end < 0) throw new BencodeError('unterminated integer', pos)
    const text = buf.toString('latin1', pos + 1, end)
    if (!/^(0|-?[1-9][0-9]{0,15})$/.test(text)) throw new BencodeError(`bad integer "${text.slice(0, 20)}"`, pos)
    return end + 1
  }
  if (byte === L || byte === D) {
    let at = pos + 1
    let lastKey: Buffer | undefined
    while (buf[at] !== E) {
      if (at >= buf.length) throw new BencodeError(byte === L ? 'unterminated list' : 'unterminated dictionary', pos)
      if (byte === D) {
        if (!isDigit(buf[at])) throw new BencodeError('dictionary key is not a string', at)
        const keyEnd = valueEnd(buf, at, depth + 1)
        const [, keyStart] = stringHeader(buf, at)
        const key = buf.subarray(keyStart, keyEnd)
        if (lastKey && Buffer.compare(lastKey, key) === 0) throw new BencodeError('duplicate dictionary key', at)
        lastKey = key
        at = keyEnd
      }
      at = valueEnd(buf, at, depth + 1)
    }
    return at + 1
  }
  if (isDigit(byte)) {
    const [length, start] = stringHeader(buf, pos)
    return start + length
  }
  throw new BencodeError(`unexpected byte 0x${byte.toString(16).padStart(2, '0')}`, pos)
}

/**
 * A decoded value: integers as numbers, byte strings as Buffers (copies, not
 * views of the input), dictionaries as null-prototype objects keyed by the key's bytes
 * read as latin1, so binary keys (a scrape's info-hashes) survive:
 * `Buffer.from(key, 'latin1')` gives them back.
 */
export type BValue = number | Buffer | BValue[] | {[key: string]: BValue}

function decodeAt(buf: Buffer, pos: number, depth: number): [BValue, number] {
  if (depth > MAX_DEPTH) throw new BencodeError('nesting too deep', pos)
  const byte = buf[pos]
  if (byte === L) {
    const list: BValue[] = []
    let at = pos + 1
    while (buf[at] !== E) {
      if (at >= buf.length) throw new BencodeError('unterminated list', pos)
      const [value, next] = decodeAt(buf, at, depth + 1)
      list.push(value)
      at = next
    }
    return [list, at + 1]
  }
  if (byte === D) {
    const dict = Object.create(null) as {[key: string]: BValue}
    let at = pos + 1
    while (buf[at] !== E) {
      if (at >= buf.length) throw new BencodeError('unterminated dictionary', pos)
      if (!isDigit(buf[at])) throw new BencodeError('dictionary key is not a string', at)
      const [length, start] = stringHeader(buf, at)
      const key = buf.toString('latin1', start, start + length)
      if (key in dict) throw new BencodeError('duplicate dictionary key', at)
      const [value, next] = decodeAt(buf, start + length, depth + 1)
      dict[key] = value
      at = next
    }
    return [dict, at + 1]
  }
  const end = valueEnd(buf, pos, depth)
  if (byte === I) return [Number(buf.toString('latin1', pos + 1, end - 1)), end]
  const [, start] = stringHeader(buf, pos)
  return [Buffer.from(buf.subarray(start, end)), end]
}

/** Decodes exactly one value filling all of `buf`; throws BencodeError on anything malformed or trailing. */
export function decode(buf: Buffer): BValue {
  const [value, end] = decodeAt(buf, 0, 0)
  if (end !== buf.length) throw new BencodeError('trailing bytes after the value', end)
  return value
}

/** Bencodes a value (strings as UTF-8, dictionary keys sorted). */
export function encode(value: unknown): Buffer {
  const bytes = bencode.encode(value)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** For a top-level dictionary: each key's raw value bytes. Throws BencodeError when `buf` is not one. */
export function dictSpans(buf: Buffer): Map<string, Buffer> {
  const end = valueEnd(buf, 0)
  if (end !== buf.length) throw new BencodeError('trailing bytes after the value', end)
  if (buf[0] !== D) throw new BencodeError('not a dictionary', 0)
  const spans = new Map<string, Buffer>()
  let at = 1
  while (buf[at] !== E) {
    const [length, start] = stringHeader(buf, at)
    const key = buf.toString('utf8', start, start + length)
    const valueStart = start + length
    at = valueEnd(buf, valueStart)
    spans.set(key, buf.subarray(valueStart, at))
  }
  return spans
}

export function isDict(value: BValue | undefined): value is {[key: string]: BValue} {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value)
}
