/**
 * The DNS wire format, through dns-packet, with two repairs:
 *
 * - Records are walked by their RDLENGTH. dns-packet decodes RDATA by type and
 *   ignores RDLENGTH, so the zero-length RDATA of RFC 2136 deletes (class ANY
 *   or NONE, e.g. "delete the A RRset at a name") would be read as four bytes
 *   of address and shift every later record. A record with RDLENGTH 0 here
 *   gets `data: null`; one whose RDATA does not fill its RDLENGTH exactly is
 *   malformed.
 * - Classes NONE (254) and ANY (255) keep their numbers; dns-packet has no
 *   name for NONE and would encode it as 0.
 *
 * Names in decoded messages are canonical (see names.ts); TXT data is string[].
 */
import {createRequire} from 'node:module'

import packet from 'dns-packet'

import {canonical} from './names.js'

/** dns-packet's table of type mnemonics (not in its typings). */
export const typeCodes = createRequire(import.meta.url)('dns-packet/types.js') as {
  toString(type: number): string
  toType(name: string): number
}

type Decoder<T> = ((buf: Buffer, offset?: number) => T) & {bytes: number}
type Encoder<T> = ((value: T, buf?: Buffer, offset?: number) => Buffer) & {bytes: number}

/** The per-part codecs dns-packet exports but its typings leave out. */
export const codecs = packet as unknown as {
  name: {decode: Decoder<string>; encode: Encoder<string>}
  answer: {decode: Decoder<Record<string, unknown>>; encode: Encoder<packet.Answer>}
}

export const Opcode = {QUERY: 0, NOTIFY: 4, UPDATE: 5} as const

export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  YXDOMAIN: 6,
  YXRRSET: 7,
  NXRRSET: 8,
  NOTAUTH: 9,
  NOTZONE: 10,
} as const

export const RCODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Rcode).map(([name, value]) => [value, name]),
)

export const CLASS_IN = 1
export const CLASS_NONE = 254
export const CLASS_ANY = 255
const TYPE_OPT = 41

/** The smallest UDP payload every DNS speaker accepts (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_LIMIT = 512
/** The payload size we advertise and use upstream (the DNS Flag Day 2020 figure). */
export const OUR_EDNS_SIZE = 1232
/** The largest client-advertised size we honour. */
export const MAX_EDNS_SIZE = 4096

export interface SoaData {
  mname: string
  rname: string
  serial: number
  refresh: number
  retry: number
  expire: number
  minimum: number
}

export interface SrvData {
  priority: number
  weight: number
  port: number
  target: string
}

export interface MxData {
  preference: number
  exchange: string
}

/** RDATA: an address or a name (A, AAAA, NS, CNAME, PTR), a structure, TXT strings, raw bytes, or null (RDLENGTH 0). */
export type RrData = string | string[] | SoaData | SrvData | MxData | Buffer | null

export interface Rr {
  name: string
  /** Mnemonic as dns-packet names it ('A', 'SRV', 'UNKNOWN_65280', 'ANY'). */
  type: string
  /** Numeric class: 1 IN, 254 NONE, 255 ANY. */
  klass: number
  ttl: number
  data: RrData
}

export interface Question {
  name: string
  type: string
  klass: number
}

export interface Edns {
  udpPayloadSize: number
  version: number
  extendedRcode: number
  flags: number
}

export interface Message {
  id: number
  qr: boolean
  opcode: number
  aa: boolean
  tc: boolean
  rd: boolean
  ra: boolean
  rcode: number
  questions: Question[]
  answers: Rr[]
  authorities: Rr[]
  additionals: Rr[]
  /** The OPT pseudo-record, lifted out of the additional section. */
  edns?: Edns
}

/** A packet we cannot parse. `id` is set when at least the header was readable. */
export class WireError extends Error {
  constructor(
    message: string,
    readonly id?: number,
    readonly opcode?: number,
    readonly qr?: boolean,
  ) {
    super(message)
    this.name = 'WireError'
  }
}

function normalizeData(type: string, data: unknown): RrData {
  switch (type) {
    case 'NS':
    case 'CNAME':
    case 'PTR':
    case 'DNAME':
      return canonical(data as string)
    case 'SOA': {
      const soa = data as SoaData
      return {...soa, mname: canonical(soa.mname), rname: canonical(soa.rname)}
    }
    case 'SRV': {
      const srv = data as SrvData
      return {...srv, target: canonical(srv.target)}
    }
    case 'MX': {
      const mx = data as MxData
      return {...mx, exchange: canonical(mx.exchange)}
    }
    case 'TXT':
      return (data as Buffer[]).map((part) => part.toString('utf8'))
    default:
      return data as RrData
  }
}

function decodeRecord(buf: Buffer, start: number): {rr?: Rr; edns?: Edns; end: number} {
  const owner = codecs.name.decode(buf, start)
  const fixed = start + codecs.name.decode.bytes
  if (fixed + 10 > buf.length) throw new Error('record header past the end')
  const typeNum = buf.readUInt16BE(fixed)
  const klass = buf.readUInt16BE(fixed + 2)
  const ttl = buf.readUInt32BE(fixed + 4)
  const rdlength = buf.readUInt16BE(fixed + 8)
  const end = fixed + 10 + rdlength
  if (end > buf.length) throw new Error('RDATA past the end')
  if (typeNum === TYPE_OPT) {
    const opt = codecs.answer.decode(buf, start) as {udpPayloadSize: number; flags?: number; extendedRcode?: number; ednsVersion?: number}
    if (start + codecs.answer.decode.bytes !== end) throw new Error('bad OPT RDATA')
    return {
      end,
      edns: {
        udpPayloadSize: opt.udpPayloadSize,
        version: opt.ednsVersion ?? 0,
        extendedRcode: opt.extendedRcode ?? 0,
        flags: opt.flags ?? 0,
      },
    }
  }

  const type = typeCodes.toString(typeNum)
  let data: RrData = null
  if (rdlength > 0) {
    const decoded = codecs.answer.decode(buf, start)
    if (start + codecs.answer.decode.bytes !== end) throw new Error(`bad ${type} RDATA length`)
    data = normalizeData(type, decoded.data)
  }
  return {end, rr: {name: canonical(owner), type, klass, ttl, data}}
}

/** Decodes a whole message; throws WireError on anything malformed. */
export function decodeMessage(buf: Buffer): Message {
  if (buf.length < 12) throw new WireError('shorter than a DNS header')
  const id = buf.readUInt16BE(0)
  const flags = buf.readUInt16BE(2)
  const opcode = (flags >> 11) & 0xf
  const qr = (flags & 0x8000) !== 0
  const counts = [4, 6, 8, 10].map((at) => buf.readUInt16BE(at))
  const message: Message = {
    id,
    qr,
    opcode,
    aa: (flags & 0x400) !== 0,
    tc: (flags & 0x200) !== 0,
    rd: (flags & 0x100) !== 0,
    ra: (flags & 0x80) !== 0,
    rcode: flags & 0xf,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  }
  try {
    let offset = 12
    for (let i = 0; i < counts[0]; i++) {
      const name = codecs.name.decode(buf, offset)
      offset += codecs.name.decode.bytes
      if (offset + 4 > buf.length) throw new Error('question past the end')
      message.questions.push({name: canonical(name), type: typeCodes.toString(buf.readUInt16BE(offset)), klass: buf.readUInt16BE(offset + 2)})
      offset += 4
    }
    const sections = [message.answers, message.authorities, message.additionals]
    for (let s = 0; s < 3; s++) {
      for (let i = 0; i < counts[s + 1]; i++) {
        const {rr, edns, end} = decodeRecord(buf, offset)
        offset = end
        if (edns) {
          if (s !== 2 || message.edns) throw new Error('misplaced or repeated OPT')
          message.edns = edns
        } else if (rr) sections[s].push(rr)
      }
    }
  } catch (error) {
    throw new WireError(`malformed message: ${(error as Error).message}`, id, opcode, qr)
  }
  return message
}

export function className(klass: number): string {
  if (klass === CLASS_IN) return 'IN'
  if (klass === CLASS_ANY) return 'ANY'
  return `UNKNOWN_${klass}`
}

/** One record as dns-packet encodes it (TXT arrays copied, because dns-packet rewrites them in place). */
function toPacketAnswer(rr: Rr): packet.Answer {
  const data = Array.isArray(rr.data) ? [...rr.data] : rr.data
  return {name: rr.name, type: rr.type, class: className(rr.klass), ttl: rr.ttl, data} as unknown as packet.Answer
}

export function headerFlags(message: Pick<Message, 'qr' | 'opcode' | 'aa' | 'tc' | 'rd' | 'ra' | 'rcode'>): number {
  return (
    ((message.opcode & 0xf) << 11) |
    (message.aa ? 0x400 : 0) |
    (message.tc ? 0x200 : 0) |
    (message.rd ? 0x100 : 0) |
    (message.ra ? 0x80 : 0) |
    (message.rcode & 0xf)
  )
}

function encodeRaw(message: Message): Buffer {
  const additionals = message.additionals.map(toPacketAnswer)
  if (message.edns) {
    additionals.push({
      name: '.',
      type: 'OPT',
      udpPayloadSize: message.edns.udpPayloadSize,
      extendedRcode: message.edns.extendedRcode,
      ednsVersion: message.edns.version,
      flags: message.edns.flags,
      options: [],
    } as unknown as packet.Answer)
  }
  return packet.encode({
    id: message.id,
    type: message.qr ? 'response' : 'query',
    flags: headerFlags(message),
    questions: message.questions.map((q) => ({name: q.name, type: q.type, class: className(q.klass)}) as packet.Question),
    answers: message.answers.map(toPacketAnswer),
    authorities: message.authorities.map(toPacketAnswer),
    additionals,
  })
}

/**
 * Encodes a message. Over `limit` bytes it is cut to the header, question
 * and OPT with TC set, which tells the client to ask again over TCP
 * (RFC 2181 §9: a partial RRset must not be passed off as whole).
 */
export function encodeMessage(message: Message, limit = 65535): Buffer {
  const whole = encodeRaw(message)
  if (whole.length <= limit) return whole
  return encodeRaw({...message, tc: true, answers: [], authorities: [], additionals: []})
}

/** The UDP payload limit a query allows its answer (RFC 6891 §6.2.5). */
export function udpLimitFor(query: Message): number {
  if (!query.edns) return CLASSIC_UDP_LIMIT
  return Math.min(MAX_EDNS_SIZE, Math.max(CLASSIC_UDP_LIMIT, query.edns.udpPayloadSize))
}

/** An OPT record to echo back to an EDNS client. */
export function ourEdns(extendedRcode = 0): Edns {
  return {udpPayloadSize: OUR_EDNS_SIZE, version: 0, extendedRcode, flags: 0}
}

/** A reply skeleton for `query`: same id, opcode, question and RD; QR set. */
export function replyTo(query: Message, rcode: number = Rcode.NOERROR): Message {
  return {
    id: query.id,
    qr: true,
    opcode: query.opcode,
    aa: false,
    tc: false,
    rd: query.rd,
    ra: false,
    rcode,
    questions: query.questions,
    answers: [],
    authorities: [],
    additionals: [],
    edns: query.edns ? ourEdns() : undefined,
  }
}

/** Builds a query message. */
export function makeQuery(id: number, name: string, type: string, options: {rd?: boolean; edns?: boolean} = {}): Message {
  return {
    id,
    qr: false,
    opcode: Opcode.QUERY,
    aa: false,
    tc: false,
    rd: options.rd ?? true,
    ra: false,
    rcode: 0,
    questions: [{name: canonical(name), type: type.toUpperCase(), klass: CLASS_IN}],
    answers: [],
    authorities: [],
    additionals: [],
    edns: options.edns === false ? undefined : ourEdns(),
  }
}

/** Splits a TCP byte stream into DNS messages (2-byte big-endian length prefix, RFC 1035 §4.2.2). */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0)

  /** Adds bytes; returns every message now complete, in order. */
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    const frames: Buffer[] = []
    while (this.pending.length >= 2) {
      const length = this.pending.readUInt16BE(0)
      if (this.pending.length < 2 + length) break
      frames.push(this.pending.subarray(2, 2 + length))
      this.pending = this.pending.subarray(2 + length)
    }
    return frames
  }

  /** Bytes held back waiting for the rest of a frame. */
  get buffered(): number {
    return this.pending.length
  }
}

/** Prefixes a message with its 2-byte length for TCP. */
export function frame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(2)
  prefix.writeUInt16BE(message.length)
  return Buffer.concat([prefix, message])
}

/** True when two records of one type carry the same RDATA (names compared canonically). */
export function sameData(a: Rr, b: Rr): boolean {
  return JSON.stringify(dataKey(a.data)) === JSON.stringify(dataKey(b.data))
}

function dataKey(data: RrData): unknown {
  if (Buffer.isBuffer(data)) return data.toString('hex')
  return data
}
