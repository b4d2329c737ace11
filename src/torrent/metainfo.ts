/**
 * Metainfo (.torrent, BEP 3 v1), magnets (BEP 9) and the helpers both the
 * tracker and the peer side share. Parsing is strict: everything a downloader
 * later trusts (piece count, file lengths, path components) is checked here, so
 * a hostile .torrent cannot make us write outside DEST or mis-size a piece.
 */
import {createHash} from 'node:crypto'

import {UsageError} from '../base/index.js'
import {BencodeError, type BValue, decode, dictSpans, encode, isDict} from './bencode.js'

export interface TorrentFile {
  path: string[]
  length: number
  /** Byte offset of the file in the torrent's concatenated content. */
  offset: number
}

export interface Metainfo {
  /** 20-byte SHA-1 of the bencoded info dictionary exactly as found in the .torrent. */
  infoHash: Buffer
  /** 40 lowercase hex. */
  infoHashHex: string
  name: string
  pieceLength: number
  /** One 20-byte SHA-1 per piece. */
  pieces: Buffer[]
  /** Total bytes. */
  length: number
  /** A single-file torrent has one entry, path [name]. */
  files: TorrentFile[]
  multiFile: boolean
  /** 'announce' then the 'announce-list' tiers, flattened, de-duplicated, in order. */
  announce: string[]
  /** The raw bencoded info dictionary (served for BEP 9). */
  info: Buffer
}

/** A .torrent, info dictionary or magnet that is malformed; the message says what is wrong. */
export class TorrentFormatError extends UsageError {
  override readonly code: string = 'ETORRENT'
}

function fail(what: string): never {
  throw new TorrentFormatError(`invalid torrent: ${what}`)
}

function text(value: BValue | undefined, what: string): string {
  if (!Buffer.isBuffer(value)) fail(`${what} is not a string`)
  return value.toString('utf8')
}

function count(value: BValue | undefined, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(`${what} is not a non-negative integer`)
  return value
}

/** A path component a downloader may safely create (no separators, no '.' or '..'). */
function component(value: BValue | undefined, what: string): string {
  const name = text(value, what)
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) fail(`${what} "${name}" is not a safe file name`)
  return name
}

function parseFiles(info: {[key: string]: BValue}, name: string): TorrentFile[] {
  if (info.files === undefined) return [{path: [name], length: count(info.length, 'info.length'), offset: 0}]
  if (info.length !== undefined) fail('info has both length and files')
  if (!Array.isArray(info.files) || info.files.length === 0) fail('info.files is not a non-empty list')
  const files: TorrentFile[] = []
  let offset = 0
  for (const [i, entry] of info.files.entries()) {
    if (!isDict(entry)) fail(`info.files[${i}] is not a dictionary`)
    const length = count(entry.length, `info.files[${i}].length`)
    const raw = entry.path
    if (!Array.isArray(raw) || raw.length === 0) fail(`info.files[${i}].path is not a non-empty list`)
    const path = raw.map((part, j) => component(part, `info.files[${i}].path[${j}]`))
    files.push({path, length, offset})
    offset += length
    if (!Number.isSafeInteger(offset)) fail('total length too large')
  }
  return files
}

function trackerList(top: {[key: string]: BValue}): string[] {
  const urls: string[] = []
  if (Buffer.isBuffer(top.announce)) urls.push(top.announce.toString('utf8'))
  const tiers = top['announce-list']
  if (Array.isArray(tiers)) {
    for (const tier of tiers) {
      if (!Array.isArray(tier)) continue
      for (const url of tier) if (Buffer.isBuffer(url)) urls.push(url.toString('utf8'))
    }
  }
  return [...new Set(urls.filter((url) => url !== ''))]
}

/** Metainfo from a raw info dictionary (e.g. received over BEP 9). Verifies no hash: the caller does. */
export function parseInfo(info: Buffer, announce: string[] = []): Metainfo {
  let dict: BValue
  try {
    dict = decode(info)
  } catch (error) {
    if (error instanceof BencodeError) fail(`info is not valid bencode (${error.message})`)
    throw error
  }
  if (!isDict(dict)) fail('info is not a dictionary')
  const name = component(dict.name, 'info.name')
  const pieceLength = count(dict['piece length'], 'info["piece length"]')
  if (pieceLength === 0) fail('piece length is 0')
  const hashes = dict.pieces
  if (!Buffer.isBuffer(hashes) || hashes.length % 20 !== 0) fail('info.pieces is not a multiple of 20 bytes')
  const files = parseFiles(dict, name)
  const length = files.reduce((sum, file) => sum + file.length, 0)
  const expected = Math.ceil(length / pieceLength)
  if (hashes.length / 20 !== expected) fail(`${hashes.length / 20} piece hashes for ${length} bytes in pieces of ${pieceLength} (expected ${expected})`)
  const pieces: Buffer[] = []
  for (let at = 0; at < hashes.length; at += 20) pieces.push(Buffer.from(hashes.subarray(at, at + 20)))
  const infoHash = createHash('sha1').update(info).digest()
  return {
    infoHash,
    infoHashHex: infoHash.toString('hex'),
    name,
    pieceLength,
    pieces,
    length,
    files,
    multiFile: dict.files !== undefined,
    announce,
    info: Buffer.from(info),
  }
}

/** Parses a .torrent file; throws TorrentFormatError on anything malformed. */
export function parseTorrent(data: Buffer): Metainfo {
  let spans: Map<string, Buffer>
  let top: BValue
  try {
    spans = dictSpans(data)
    top = decode(data)
  } catch (error) {
    if (error instanceof BencodeError) fail(`not valid bencode (${error.message})`)
    throw error
  }
  const info = spans.get('info')
  if (!info) fail('no info dictionary')
  return parseInfo(info, trackerList(top as {[key: string]: BValue}))
}

/** The bytes of a .torrent holding `info` (raw, so the info-hash is kept) and the trackers. */
export function encodeTorrent(info: Buffer, announce: string[] = [], extra: {createdBy?: string; creationDate?: number} = {}): Buffer {
  const top: Record<string, unknown> = {}
  if (announce.length > 0) top.announce = announce[0]
  if (announce.length > 1) top['announce-list'] = announce.map((url) => [url])
  if (extra.createdBy) top['created by'] = extra.createdBy
  if (extra.creationDate !== undefined) top['creation date'] = extra.creationDate
  // The info dictionary goes in raw; every other key sorts before or after "info".
  const before = Object.keys(top).filter((key) => key < 'info')
  const after = Object.keys(top).filter((key) => key > 'info')
  const part = (keys: string[]) => {
    const body = encode(Object.fromEntries(keys.map((key) => [key, top[key]])))
    return body.subarray(1, body.length - 1)
  }
  return Buffer.concat([Buffer.from('d'), part(before), Buffer.from('4:info'), info, part(after), Buffer.from('e')])
}

/** Bytes of piece `index`: pieceLength, except a shorter last piece. */
export function pieceSize(meta: Pick<Metainfo, 'pieceLength' | 'length'>, index: number): number {
  return Math.min(meta.pieceLength, meta.length - index * meta.pieceLength)
}

export function magnetUri(meta: Pick<Metainfo, 'infoHashHex' | 'name' | 'announce'>): string {
  let uri = `magnet:?xt=urn:btih:${meta.infoHashHex}`
  if (meta.name) uri += `&dn=${encodeURIComponent(meta.name)}`
  for (const url of meta.announce) uri += `&tr=${encodeURIComponent(url)}`
  return uri
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

function base32(textValue: string): Buffer {
  let bits = 0
  let value = 0
  const out: number[] = []
  for (const char of textValue.toUpperCase()) {
    const digit = BASE32.indexOf(char)
    if (digit < 0) throw new TorrentFormatError(`invalid magnet: "${char}" is not base32`)
    value = (value << 5) | digit
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Buffer.from(out)
}

export function parseMagnet(uri: string): {infoHash: Buffer; infoHashHex: string; name?: string; trackers: string[]} {
  if (!uri.toLowerCase().startsWith('magnet:?')) throw new TorrentFormatError('invalid magnet: does not start with "magnet:?"')
  const params = new URLSearchParams(uri.slice('magnet:?'.length))
  let infoHash: Buffer | undefined
  for (const xt of params.getAll('xt')) {
    const match = /^urn:btih:(.*)$/i.exec(xt)
    if (!match) continue
    const id = match[1]
    if (/^[0-9a-f]{40}$/i.test(id)) infoHash = Buffer.from(id, 'hex')
    else if (id.length === 32) infoHash = base32(id)
    else throw new TorrentFormatError(`invalid magnet: btih "${id}" is neither 40 hex nor 32 base32 characters`)
    break
  }
  if (!infoHash) throw new TorrentFormatError('invalid magnet: no xt=urn:btih:<info-hash>')
  const name = params.get('dn') ?? undefined
  const trackers = [...new Set(params.getAll('tr').filter((url) => url !== ''))]
  return {infoHash, infoHashHex: infoHash.toString('hex'), ...(name === undefined ? {} : {name}), trackers}
}
