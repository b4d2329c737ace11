/**
 * The peer wire protocol (BEP 3) with the fast extension (BEP 6) and the
 * extension protocol (BEP 10), as pure functions over Buffers: a handshake
 * codec, a message codec and a frame reader that is fed whatever bytes
 * arrive. Nothing here touches a socket; malformed input is a WireError.
 */

export const PROTOCOL = 'BitTorrent protocol'
export const HANDSHAKE_LENGTH = 68
/** Blocks are 16 KiB; peers drop larger requests. */
export const BLOCK_SIZE = 16 * 1024
/** We refuse to serve blocks larger than this (BEP 3 says clients close on > 128 KiB). */
export const MAX_REQUEST = 128 * 1024
/** The largest frame we accept: a 128 KiB block, or a bitfield of a million pieces. */
export const MAX_FRAME = (1 << 20) + 16

export class WireError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'WireError'
  }
}

export const MessageId = {
  CHOKE: 0,
  UNCHOKE: 1,
  INTERESTED: 2,
  NOT_INTERESTED: 3,
  HAVE: 4,
  BITFIELD: 5,
  REQUEST: 6,
  PIECE: 7,
  CANCEL: 8,
  PORT: 9,
  // BEP 6
  SUGGEST: 0x0d,
  HAVE_ALL: 0x0e,
  HAVE_NONE: 0x0f,
  REJECT: 0x10,
  ALLOWED_FAST: 0x11,
  // BEP 10
  EXTENDED: 20,
} as const

export type Message =
  | {type: 'keep-alive'}
  | {type: 'choke'}
  | {type: 'unchoke'}
  | {type: 'interested'}
  | {type: 'not-interested'}
  | {type: 'have'; index: number}
  | {type: 'bitfield'; bits: Buffer}
  | {type: 'request'; index: number; begin: number; length: number}
  | {type: 'piece'; index: number; begin: number; block: Buffer}
  | {type: 'cancel'; index: number; begin: number; length: number}
  | {type: 'port'; port: number}
  | {type: 'suggest'; index: number}
  | {type: 'have-all'}
  | {type: 'have-none'}
  | {type: 'reject'; index: number; begin: number; length: number}
  | {type: 'allowed-fast'; index: number}
  | {type: 'extended'; id: number; payload: Buffer}
  | {type: 'unknown'; id: number; payload: Buffer}

export interface Handshake {
  infoHash: Buffer
  peerId: Buffer
  /** Peer supports the fast extension (BEP 6: reserved[7] & 0x04). */
  fast: boolean
  /** Peer supports the extension protocol (BEP 10: reserved[5] & 0x10). */
  extended: boolean
  /** Peer supports the DHT (reserved[7] & 0x01); we only report it. */
  dht: boolean
}

export function encodeHandshake(infoHash: Buffer, peerId: Buffer, options: {fast?: boolean; extended?: boolean} = {}): Buffer {
  if (infoHash.length !== 20 || peerId.length !== 20) throw new WireError('info-hash and peer id must be 20 bytes')
  const buf = Buffer.alloc(HANDSHAKE_LENGTH)
  buf[0] = 19
  buf.write(PROTOCOL, 1, 'latin1')
  if (options.extended ?? true) buf[20 + 5] |= 0x10
  if (options.fast ?? true) buf[20 + 7] |= 0x04
  infoHash.copy(buf, 28)
  peerId.copy(buf, 48)
  return buf
}

/** Decodes the 68-byte handshake at the start of `buf`; null while fewer bytes have arrived. */
export function decodeHandshake(buf: Buffer): Handshake | null {
  if (buf.length >= 1 && buf[0] !== 19) throw new WireError(`not a BitTorrent handshake (first byte ${buf[0]})`)
  const known = Math.min(buf.length, 20)
  if (buf.subarray(1, known).toString('latin1') !== PROTOCOL.slice(0, known - 1)) throw new WireError('not a BitTorrent handshake')
  if (buf.length < HANDSHAKE_LENGTH) return null
  const reserved = buf.subarray(20, 28)
  return {
    infoHash: Buffer.from(buf.subarray(28, 48)),
    peerId: Buffer.from(buf.subarray(48, 68)),
    extended: (reserved[5] & 0x10) !== 0,
    fast: (reserved[7] & 0x04) !== 0,
    dht: (reserved[7] & 0x01) !== 0,
  }
}

function frame(id: number, payloadLength: number): Buffer {
  const buf = Buffer.allocUnsafe(5 + payloadLength)
  buf.writeUInt32BE(1 + payloadLength, 0)
  buf[4] = id
  return buf
}

function triple(id: number, a: number, b: number, c: number): Buffer {
  const buf = frame(id, 12)
  buf.writeUInt32BE(a, 5)
  buf.writeUInt32BE(b, 9)
  buf.writeUInt32BE(c, 13)
  return buf
}

function single(id: number, value: number): Buffer {
  const buf = frame(id, 4)
  buf.writeUInt32BE(value, 5)
  return buf
}

/** Encodes one message with its length prefix. */
export function encodeMessage(message: Message): Buffer {
  switch (message.type) {
    case 'keep-alive':
      return Buffer.alloc(4)
    case 'choke':
      return frame(MessageId.CHOKE, 0)
    case 'unchoke':
      return frame(MessageId.UNCHOKE, 0)
    case 'interested':
      return frame(MessageId.INTERESTED, 0)
    case 'not-interested':
      return frame(MessageId.NOT_INTERESTED, 0)
    case 'have-all':
      return frame(MessageId.HAVE_ALL, 0)
    case 'have-none':
      return frame(MessageId.HAVE_NONE, 0)
    case 'have':
      return single(MessageId.HAVE, message.index)
    case 'suggest':
      return single(MessageId.SUGGEST, message.index)
    case 'allowed-fast':
      return single(MessageId.ALLOWED_FAST, message.index)
    case 'bitfield': {
      const buf = frame(MessageId.BITFIELD, message.bits.length)
      message.bits.copy(buf, 5)
      return buf
    }
    case 'request':
      return triple(MessageId.REQUEST, message.index, message.begin, message.length)
    case 'cancel':
      return triple(MessageId.CANCEL, message.index, message.begin, message.length)
    case 'reject':
      return triple(MessageId.REJECT, message.index, message.begin, message.length)
    case 'piece': {
      const buf = frame(MessageId.PIECE, 8 + message.block.length)
      buf.writeUInt32BE(message.index, 5)
      buf.writeUInt32BE(message.begin, 9)
      message.block.copy(buf, 13)
      return buf
    }
    case 'port': {
      const buf = frame(MessageId.PORT, 2)
      buf.writeUInt16BE(message.port, 5)
      return buf
    }
    case 'extended': {
      const buf = frame(MessageId.EXTENDED, 1 + message.payload.length)
      buf[5] = message.id
      message.payload.copy(buf, 6)
      return buf
    }
    case 'unknown': {
      const buf = frame(message.id, message.payload.length)
      message.payload.copy(buf, 5)
      return buf
    }
  }
}

/** The header of a PIECE message, so a block can be written without copying it into one buffer. */
export function pieceHeader(index: number, begin: number, blockLength: number): Buffer {
  const buf = frame(MessageId.PIECE, 8)
  buf.writeUInt32BE(9 + blockLength, 0)
  buf.writeUInt32BE(index, 5)
  buf.writeUInt32BE(begin, 9)
  return buf
}

function expectLength(name: string, body: Buffer, length: number): void {
  if (body.length !== length) throw new WireError(`${name} message has ${body.length} payload bytes, expected ${length}`)
}

/** Decodes one message body (the bytes after the length prefix); an empty body is a keep-alive. */
export function decodeMessage(body: Buffer): Message {
  if (body.length === 0) return {type: 'keep-alive'}
  const id = body[0]
  const payload = body.subarray(1)
  switch (id) {
    case MessageId.CHOKE:
    case MessageId.UNCHOKE:
    case MessageId.INTERESTED:
    case MessageId.NOT_INTERESTED:
    case MessageId.HAVE_ALL:
    case MessageId.HAVE_NONE: {
      const type = ({0: 'choke', 1: 'unchoke', 2: 'interested', 3: 'not-interested', 14: 'have-all', 15: 'have-none'} as const)[id]
      expectLength(type, payload, 0)
      return {type}
    }
    case MessageId.HAVE:
    case MessageId.SUGGEST:
    case MessageId.ALLOWED_FAST: {
      const type = ({4: 'have', 13: 'suggest', 17: 'allowed-fast'} as const)[id]
      expectLength(type, payload, 4)
      return {type, index: payload.readUInt32BE(0)}
    }
    case MessageId.BITFIELD:
      return {type: 'bitfield', bits: payload}
    case MessageId.REQUEST:
    case MessageId.CANCEL:
    case MessageId.REJECT: {
      const type = ({6: 'request', 8: 'cancel', 16: 'reject'} as const)[id]
      expectLength(type, payload, 12)
      return {type, index: payload.readUInt32BE(0), begin: payload.readUInt32BE(4), length: payload.readUInt32BE(8)}
    }
    case MessageId.PIECE:
      if (payload.length < 8) throw new WireError(`piece message has ${payload.length} payload bytes, expected at least 8`)
      return {type: 'piece', index: payload.readUInt32BE(0), begin: payload.readUInt32BE(4), block: payload.subarray(8)}
    case MessageId.PORT:
      expectLength('port', payload, 2)
      return {type: 'port', port: payload.readUInt16BE(0)}
    case MessageId.EXTENDED:
      if (payload.length < 1) throw new WireError('extended message without an id')
      return {type: 'extended', id: payload[0], payload: payload.subarray(1)}
    default:
      return {type: 'unknown', id, payload}
  }
}

/**
 * Splits a byte stream into the handshake and then length-prefixed message
 * bodies. Feed it chunks with `push`; `next` returns whatever is complete.
 */
export class FrameReader {
  private chunks: Buffer[] = []
  private buffered = 0
  private handshakeDone: boolean

  private readonly maxFrame: number

  constructor(options: {expectHandshake?: boolean; maxFrame?: number} = {}) {
    this.handshakeDone = !(options.expectHandshake ?? true)
    this.maxFrame = options.maxFrame ?? MAX_FRAME
  }

  get pending(): number {
    return this.buffered
  }

  get handshakeRead(): boolean {
    return this.handshakeDone
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
  }

  private peek(length: number): Buffer {
    if (this.chunks[0].length < length) {
      const joined = Buffer.concat(this.chunks)
      this.chunks = [joined]
    }
    return this.chunks[0].subarray(0, length)
  }

  private take(length: number): Buffer {
    // No copy: the chunks are never written to, so a view stays valid.
    const out = this.peek(length)
    const first = this.chunks[0]
    if (first.length === length) this.chunks.shift()
    else this.chunks[0] = first.subarray(length)
    this.buffered -= length
    return out
  }

  /** The peer's handshake once 68 bytes are in; null before. Throws WireError on a bad one. */
  handshake(): Handshake | null {
    if (this.handshakeDone) throw new WireError('handshake already read')
    if (this.buffered === 0) return null
    const shake = decodeHandshake(this.peek(Math.min(this.buffered, HANDSHAKE_LENGTH)))
    if (!shake) return null
    this.take(HANDSHAKE_LENGTH)
    this.handshakeDone = true
    return shake
  }

  /** The next complete message, or null. Throws WireError on an oversized frame or a malformed message. */
  next(): Message | null {
    if (!this.handshakeDone) throw new WireError('message before the handshake')
    if (this.buffered < 4) return null
    const length = this.peek(4).readUInt32BE(0)
    if (length > this.maxFrame) throw new WireError(`frame of ${length} bytes is larger than ${this.maxFrame}`)
    if (this.buffered < 4 + length) return null
    this.take(4)
    return decodeMessage(length === 0 ? Buffer.alloc(0) : this.take(length))
  }
}

// --- bitfields -------------------------------------------------------------

export function bitfieldLength(pieces: number): number {
  return Math.ceil(pieces / 8)
}

export function hasBit(bits: Buffer, index: number): boolean {
  const byte = bits[index >> 3]
  return byte !== undefined && (byte & (0x80 >> (index & 7))) !== 0
}

export function setBit(bits: Buffer, index: number): void {
  bits[index >> 3] |= 0x80 >> (index & 7)
}

/** Checks a received bitfield's size and that its spare bits are clear (BEP 3). */
export function checkBitfield(bits: Buffer, pieces: number): void {
  if (bits.length !== bitfieldLength(pieces)) throw new WireError(`bitfield of ${bits.length} bytes for ${pieces} pieces`)
  const spare = bits.length * 8 - pieces
  if (spare > 0 && (bits[bits.length - 1] & ((1 << spare) - 1)) !== 0) throw new WireError('bitfield has spare bits set')
}

/**
 * BEP 6 allowed-fast set: the canonical algorithm, for a peer at an IPv4
 * address, `k` pieces out of `pieces`.
 */
export function allowedFastSet(k: number, pieces: number, ipv4: string, infoHash: Buffer, sha1: (data: Buffer) => Buffer): number[] {
  const out: number[] = []
  const parts = ipv4.split('.').map(Number)
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) return out
  let x: Buffer = Buffer.concat([Buffer.from([parts[0], parts[1], parts[2], 0]), infoHash])
  const want = Math.min(k, pieces)
  while (out.length < want) {
    x = sha1(x)
    for (let i = 0; i < 5 && out.length < want; i++) {
      const index = x.readUInt32BE(i * 4) % pieces
      if (!out.includes(index)) out.push(index)
    }
  }
  return out
}
