/**
 * BEP 10 extended handshake and BEP 9 ut_metadata messages: the info
 * dictionary of a magnet's torrent, fetched from peers in 16 KiB pieces and
 * checked against the info-hash.
 */
import {createHash} from 'node:crypto'

import {type BValue, decode, encode, isDict, valueEnd} from './bencode.js'

export const METADATA_PIECE = 16 * 1024
/** Our id for ut_metadata messages sent to us. */
export const UT_METADATA_ID = 3
/** The largest info dictionary we accept from peers. */
export const MAX_METADATA = 16 * 1024 * 1024

export interface ExtendedHandshake {
  m: Record<string, number>
  metadataSize?: number
  client?: string
  port?: number
  reqq?: number
}

export function encodeExtendedHandshake(options: {metadataSize?: number; port?: number; client?: string}): Buffer {
  const dict: Record<string, unknown> = {m: {ut_metadata: UT_METADATA_ID}, v: options.client ?? 'disk-client', reqq: 500}
  if (options.metadataSize !== undefined) dict.metadata_size = options.metadataSize
  if (options.port) dict.p = options.port
  return encode(dict)
}

export function decodeExtendedHandshake(payload: Buffer): ExtendedHandshake {
  const value = decode(payload)
  if (!isDict(value)) throw new Error('extended handshake is not a dictionary')
  const m: Record<string, number> = {}
  if (isDict(value.m)) for (const [name, id] of Object.entries(value.m)) if (typeof id === 'number' && id > 0 && id < 256) m[name] = id
  const size = value.metadata_size
  return {
    m,
    metadataSize: typeof size === 'number' && size > 0 && size <= MAX_METADATA ? size : undefined,
    client: Buffer.isBuffer(value.v) ? value.v.toString('utf8') : undefined,
    port: typeof value.p === 'number' && value.p > 0 && value.p < 65536 ? value.p : undefined,
    reqq: typeof value.reqq === 'number' ? value.reqq : undefined,
  }
}

export type MetadataMessage = {type: 'request'; piece: number} | {type: 'data'; piece: number; totalSize: number; data: Buffer} | {type: 'reject'; piece: number}

export function encodeMetadataMessage(message: MetadataMessage): Buffer {
  if (message.type === 'request') return encode({msg_type: 0, piece: message.piece})
  if (message.type === 'reject') return encode({msg_type: 2, piece: message.piece})
  return Buffer.concat([encode({msg_type: 1, piece: message.piece, total_size: message.totalSize}), message.data])
}

/** Decodes a ut_metadata payload: a bencoded dictionary, followed by the data for msg_type 1. */
export function decodeMetadataMessage(payload: Buffer): MetadataMessage {
  const end = valueEnd(payload, 0)
  const dict: BValue = decode(payload.subarray(0, end))
  if (!isDict(dict) || typeof dict.msg_type !== 'number' || typeof dict.piece !== 'number' || dict.piece < 0) throw new Error('bad ut_metadata message')
  if (dict.msg_type === 0) return {type: 'request', piece: dict.piece}
  if (dict.msg_type === 2) return {type: 'reject', piece: dict.piece}
  if (dict.msg_type === 1) {
    if (typeof dict.total_size !== 'number') throw new Error('ut_metadata data without total_size')
    return {type: 'data', piece: dict.piece, totalSize: dict.total_size, data: payload.subarray(end)}
  }
  throw new Error(`unknown ut_metadata msg_type ${dict.msg_type}`)
}

/** Collects metadata pieces; `result` once all are in and the SHA-1 matches. */
export class MetadataCollector {
  readonly pieces: Array<Buffer | undefined>
  constructor(
    readonly infoHash: Buffer,
    readonly size: number,
  ) {
    this.pieces = Array.from({length: Math.ceil(size / METADATA_PIECE)})
  }

  missing(): number[] {
    return this.pieces.flatMap((piece, i) => (piece ? [] : [i]))
  }

  /** Adds a piece; returns the info dictionary when complete and valid, 'bad' when complete and the hash fails. */
  add(piece: number, data: Buffer): Buffer | 'bad' | undefined {
    if (piece >= this.pieces.length) return undefined
    const expected = piece === this.pieces.length - 1 ? this.size - piece * METADATA_PIECE : METADATA_PIECE
    if (data.length !== expected) return undefined
    this.pieces[piece] = Buffer.from(data)
    if (this.pieces.some((p) => !p)) return undefined
    const info = Buffer.concat(this.pieces as Buffer[])
    if (!createHash('sha1').update(info).digest().equals(this.infoHash)) {
      this.pieces.fill(undefined)
      return 'bad'
    }
    return info
  }
}
