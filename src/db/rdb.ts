/**
 * The RDB file format, for strings: a writer that streams a snapshot (what a
 * full resynchronisation sends) and an incremental reader for what a master
 * sends us, disk (`$<len>`) or diskless (`$EOF:<mark>`).
 *
 * Layout (Redis's rdb.h / rdb.c): `REDIS` + 4-digit version, then opcodes:
 * 0xFA aux field (string, string), 0xFE SELECTDB (length), 0xFB RESIZEDB
 * (length, length), 0xFC / 0xFD expiry (8 / 4 bytes LE) of the next key,
 * 0xF8 IDLE (length), 0xF9 FREQ (1 byte), 0xF5 FUNCTION2 (string), 0xF4
 * SLOT_INFO (3 lengths); otherwise a value type byte, a key string and the
 * value; 0xFF ends the file, followed by the CRC-64 of everything before it
 * (8 bytes LE; 0 means "not computed").
 *
 * Lengths: 00xxxxxx (6 bits), 01xxxxxx xxxxxxxx (14 bits, big-endian), 0x80 +
 * 4 bytes BE, 0x81 + 8 bytes BE; 11xxxxxx is a special string encoding:
 * 0/1/2 an 8/16/32-bit little-endian integer, 3 an LZF-compressed string
 * (compressed length, original length, data).
 */
import {Crc64} from './crc64.js'
import {lzfDecompress} from './lzf.js'

/** The version we write: 9 (Redis 5.0), which every redis-server from 5 on loads. */
export const RDB_WRITE_VERSION = 9
/** The newest version we read (Redis 7.4/8.x write 12). */
export const RDB_MAX_READ_VERSION = 12

const OP_SLOT_INFO = 0xf4
const OP_FUNCTION2 = 0xf5
const OP_FUNCTION_PRE_GA = 0xf6
const OP_MODULE_AUX = 0xf7
const OP_IDLE = 0xf8
const OP_FREQ = 0xf9
const OP_AUX = 0xfa
const OP_RESIZEDB = 0xfb
const OP_EXPIRETIME_MS = 0xfc
const OP_EXPIRETIME = 0xfd
const OP_SELECTDB = 0xfe
const OP_EOF = 0xff
const TYPE_STRING = 0

export const DATABASES = 16

// ---- writer ---------------------------------------------------------------

function lengthBytes(n: number): Buffer {
  if (n < 64) return Buffer.from([n])
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff])
  if (n <= 0xffffffff) {
    const out = Buffer.allocUnsafe(5)
    out[0] = 0x80
    out.writeUInt32BE(n, 1)
    return out
  }
  const out = Buffer.allocUnsafe(9)
  out[0] = 0x81
  out.writeBigUInt64BE(BigInt(n), 1)
  return out
}

function lengthSize(n: number): number {
  return n < 64 ? 1 : n < 16384 ? 2 : n <= 0xffffffff ? 5 : 9
}

function stringBytes(data: Buffer): Buffer[] {
  return [lengthBytes(data.length), data]
}

/** A snapshot to write: for each database 0–15, its keys and values. */
export type Snapshot = ReadonlyArray<ReadonlyArray<readonly [Buffer, Buffer]>>

const AUX: Array<[string, string]> = [
  ['redis-ver', '7.0.0'],
  ['redis-bits', '64'],
  ['writer', 'disk-client'],
]

function header(): Buffer[] {
  const parts: Buffer[] = [Buffer.from(`REDIS${String(RDB_WRITE_VERSION).padStart(4, '0')}`)]
  for (const [key, value] of AUX) parts.push(Buffer.from([OP_AUX]), ...stringBytes(Buffer.from(key)), ...stringBytes(Buffer.from(value)))
  return parts
}

/** The exact size in bytes of the file `writeRdb` produces for this snapshot. */
export function rdbSize(snapshot: Snapshot): number {
  let size = header().reduce((sum, part) => sum + part.length, 0)
  snapshot.forEach((entries, db) => {
    if (entries.length === 0) return
    size += 1 + lengthSize(db) + 1 + lengthSize(entries.length) + lengthSize(0)
    for (const [key, value] of entries) size += 1 + lengthSize(key.length) + key.length + lengthSize(value.length) + value.length
  })
  return size + 1 + 8
}

/**
 * The RDB file for a snapshot, as chunks of about `chunkBytes` (large values
 * are passed through uncopied), with the CRC-64 at the end.
 */
export function* writeRdb(snapshot: Snapshot, chunkBytes = 64 * 1024): Generator<Buffer> {
  const crc = new Crc64()
  let run: Buffer[] = []
  let runBytes = 0
  const take = (): Buffer => {
    const out = run.length === 1 ? run[0] : Buffer.concat(run, runBytes)
    run = []
    runBytes = 0
    crc.update(out)
    return out
  }
  const push = (part: Buffer): void => {
    run.push(part)
    runBytes += part.length
  }
  for (const part of header()) push(part)
  for (const [db, entries] of snapshot.entries()) {
    if (entries.length === 0) continue
    push(Buffer.from([OP_SELECTDB]))
    push(lengthBytes(db))
    push(Buffer.from([OP_RESIZEDB]))
    push(lengthBytes(entries.length))
    push(lengthBytes(0))
    for (const [key, value] of entries) {
      push(Buffer.from([TYPE_STRING]))
      push(lengthBytes(key.length))
      push(key)
      push(lengthBytes(value.length))
      if (value.length >= chunkBytes) {
        yield take()
        crc.update(value)
        yield value
      } else {
        push(value)
        if (runBytes >= chunkBytes) yield take()
      }
    }
  }
  push(Buffer.from([OP_EOF]))
  const last = take()
  yield Buffer.concat([last, crc.digestLE()])
}

// ---- reader ---------------------------------------------------------------

/** One string key read from an RDB file. */
export interface RdbEntry {
  db: number
  key: Buffer
  value: Buffer
}

class NeedMore {
  constructor(readonly upTo: number) {}
}

/** A cursor over the buffered bytes; throws NeedMore when an item is not all there yet. */
class Cursor {
  constructor(
    readonly buf: Buffer,
    public pos: number,
  ) {}

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new NeedMore(this.pos + n)
  }

  u8(): number {
    this.need(1)
    return this.buf[this.pos++]
  }

  bytes(n: number): Buffer {
    this.need(n)
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  /** A length; `special` is set for the 11xxxxxx string encodings. */
  length(): {n: number; special: boolean} {
    const first = this.u8()
    const kind = first >> 6
    if (kind === 0) return {n: first & 0x3f, special: false}
    if (kind === 1) return {n: ((first & 0x3f) << 8) | this.u8(), special: false}
    if (kind === 3) return {n: first & 0x3f, special: true}
    if (first === 0x80) return {n: this.bytes(4).readUInt32BE(0), special: false}
    if (first === 0x81) {
      const big = this.bytes(8).readBigUInt64BE(0)
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('RDB: length too large')
      return {n: Number(big), special: false}
    }
    throw new Error(`RDB: bad length byte 0x${first.toString(16)}`)
  }

  plainLength(): number {
    const {n, special} = this.length()
    if (special) throw new Error('RDB: expected a length, got a string encoding')
    return n
  }

  string(): Buffer {
    const {n, special} = this.length()
    if (!special) return Buffer.from(this.bytes(n))
    switch (n) {
      case 0:
        return Buffer.from(String(this.bytes(1).readInt8(0)))
      case 1:
        return Buffer.from(String(this.bytes(2).readInt16LE(0)))
      case 2:
        return Buffer.from(String(this.bytes(4).readInt32LE(0)))
      case 3: {
        const compressed = this.plainLength()
        const original = this.plainLength()
        return lzfDecompress(this.bytes(compressed), original)
      }
      default:
        throw new Error(`RDB: unknown string encoding ${n}`)
    }
  }

  skipString(): void {
    const {n, special} = this.length()
    if (!special) {
      this.need(n)
      this.pos += n
      return
    }
    if (n === 0) this.bytes(1)
    else if (n === 1) this.bytes(2)
    else if (n === 2) this.bytes(4)
    else if (n === 3) {
      const compressed = this.plainLength()
      this.plainLength()
      this.bytes(compressed)
    } else throw new Error(`RDB: unknown string encoding ${n}`)
  }

  /** Skips a value of a non-string type; throws for the types whose size cannot be known (streams, modules). */
  skipValue(type: number): void {
    switch (type) {
      case 1: // list
      case 2: // set
        for (let n = this.plainLength(); n > 0; n--) this.skipString()
        return
      case 3: // zset, scores as strings with a 1-byte length
        for (let n = this.plainLength(); n > 0; n--) {
          this.skipString()
          const len = this.u8()
          if (len < 253) this.bytes(len)
        }
        return
      case 4: // hash
        for (let n = this.plainLength(); n > 0; n--) {
          this.skipString()
          this.skipString()
        }
        return
      case 5: // zset2, binary double scores
        for (let n = this.plainLength(); n > 0; n--) {
          this.skipString()
          this.bytes(8)
        }
        return
      case 9: // hash zipmap
      case 10: // list ziplist
      case 11: // set intset
      case 12: // zset ziplist
      case 13: // hash ziplist
      case 16: // hash listpack
      case 17: // zset listpack
      case 20: // set listpack
        this.skipString()
        return
      case 14: // list quicklist
        for (let n = this.plainLength(); n > 0; n--) this.skipString()
        return
      case 18: // list quicklist 2: container kind + node
        for (let n = this.plainLength(); n > 0; n--) {
          this.plainLength()
          this.skipString()
        }
        return
      default:
        throw new Error(`RDB: cannot read a value of type ${type} (streams and module types are not supported)`)
    }
  }
}

/**
 * Reads an RDB file fed in chunks of any size. `feed` returns the string
 * entries completed by the chunk; once the EOF opcode and checksum are read,
 * `done` is true and `feed` returns, in `rest`, the bytes after the file.
 */
export class RdbReader {
  /** Keys of other types, skipped. */
  skipped = 0
  done = false
  version = 0
  private chunks: Buffer[] = []
  private buffered = 0
  private needUpTo = 0
  private db = 0
  private readonly crc = new Crc64()

  feed(chunk: Buffer): {entries: RdbEntry[]; rest: Buffer} {
    const entries: RdbEntry[] = []
    if (this.done) return {entries, rest: chunk}
    this.chunks.push(chunk)
    this.buffered += chunk.length
    if (this.buffered < this.needUpTo) return {entries, rest: Buffer.alloc(0)}
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered)
    const cursor = new Cursor(buf, 0)
    let consumed = 0
    try {
      if (this.version === 0) {
        const magic = cursor.bytes(9).toString('latin1')
        if (!/^REDIS\d{4}$/.test(magic)) throw new Error('RDB: not an RDB file (bad magic)')
        this.version = Number(magic.slice(5))
        if (this.version < 1 || this.version > RDB_MAX_READ_VERSION) throw new Error(`RDB: version ${this.version} is not supported`)
        consumed = cursor.pos
      }
      while (!this.done) {
        this.item(cursor, entries)
        consumed = cursor.pos
      }
    } catch (failure) {
      if (!(failure instanceof NeedMore)) throw failure
      this.needUpTo = failure.upTo - consumed
    }
    if (!this.done) this.crc.update(buf.subarray(0, consumed))
    const rest = buf.subarray(consumed)
    this.chunks = this.done || rest.length === 0 ? [] : [rest]
    this.buffered = this.done ? 0 : rest.length
    return {entries, rest: this.done ? rest : Buffer.alloc(0)}
  }

  private item(cursor: Cursor, entries: RdbEntry[]): void {
    const op = cursor.u8()
    switch (op) {
      case OP_EOF: {
        if (this.version >= 5) {
          const expected = cursor.bytes(8)
          // earlier feeds hashed what they consumed; this buffer starts where they stopped
          this.crc.update(cursor.buf.subarray(0, cursor.pos - 8))
          if (!expected.equals(Buffer.alloc(8)) && !expected.equals(this.crc.digestLE())) throw new Error('RDB: checksum mismatch')
        }
        this.done = true
        return
      }
      case OP_SELECTDB:
        this.db = cursor.plainLength()
        return
      case OP_RESIZEDB:
        cursor.plainLength()
        cursor.plainLength()
        return
      case OP_AUX:
        cursor.skipString()
        cursor.skipString()
        return
      case OP_EXPIRETIME_MS:
        cursor.bytes(8)
        return
      case OP_EXPIRETIME:
        cursor.bytes(4)
        return
      case OP_IDLE:
        cursor.plainLength()
        return
      case OP_FREQ:
        cursor.bytes(1)
        return
      case OP_FUNCTION2:
        cursor.skipString()
        return
      case OP_SLOT_INFO:
        cursor.plainLength()
        cursor.plainLength()
        cursor.plainLength()
        return
      case OP_MODULE_AUX:
      case OP_FUNCTION_PRE_GA:
        throw new Error(`RDB: opcode 0x${op.toString(16)} is not supported`)
      case TYPE_STRING: {
        const key = cursor.string()
        const value = cursor.string()
        entries.push({db: this.db, key, value})
        return
      }
      default:
        cursor.skipString()
        cursor.skipValue(op)
        this.skipped++
    }
  }
}
