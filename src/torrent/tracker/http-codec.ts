/**
 * The HTTP tracker's requests and replies (BEP 3 announce, BEP 23 compact
 * peers, BEP 7 peers6, BEP 48 scrape) as pure functions: a raw query string
 * in, bencoded bytes out. Byte-string parameters (info_hash, peer_id) are
 * percent-decoded to bytes, never through UTF-8.
 */
import {isIP, isIPv4} from 'node:net'

import {encode} from '../bencode.js'
import type {AnnounceEvent, AnnounceReply, AnnounceRequest, PeerEntry, SwarmCounts} from './swarms.js'

/** A request the tracker refuses; its message becomes the bencoded `failure reason`. */
export class TrackerRequestError extends Error {
  override name = 'TrackerRequestError'
}

/** Query parameters, each value as raw bytes, repeated keys kept in order. */
export function parseQuery(query: string): Map<string, Buffer[]> {
  const params = new Map<string, Buffer[]>()
  if (query === '') return params
  for (const part of query.split('&')) {
    if (part === '') continue
    const equals = part.indexOf('=')
    const key = percentDecode(equals < 0 ? part : part.slice(0, equals)).toString('latin1')
    const value = percentDecode(equals < 0 ? '' : part.slice(equals + 1))
    const list = params.get(key)
    if (list) list.push(value)
    else params.set(key, [value])
  }
  return params
}

function percentDecode(text: string): Buffer {
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i)
    if (char === 0x25) {
      const hex = text.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new TrackerRequestError('malformed percent-escape in the query')
      bytes.push(Number.parseInt(hex, 16))
      i += 2
    } else if (char > 0x7f) {
      throw new TrackerRequestError('non-ASCII byte in the query')
    } else {
      bytes.push(char)
    }
  }
  return Buffer.from(bytes)
}

function one(params: Map<string, Buffer[]>, key: string): Buffer | undefined {
  return params.get(key)?.[0]
}

function hash20(value: Buffer | undefined, key: string): Buffer {
  if (value === undefined) throw new TrackerRequestError(`missing ${key}`)
  if (value.length !== 20) throw new TrackerRequestError(`invalid ${key}: ${value.length} bytes, not 20`)
  return value
}

function integer(params: Map<string, Buffer[]>, key: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const value = one(params, key)
  if (value === undefined) return fallback
  const text = value.toString('latin1')
  if (!/^-?[0-9]{1,16}$/.test(text)) throw new TrackerRequestError(`invalid ${key}: not an integer`)
  const number = Number(text)
  if (number < min || number > max) throw new TrackerRequestError(`invalid ${key}: out of range`)
  return number
}

const EVENTS: Record<string, AnnounceEvent> = {'': 'none', empty: 'none', started: 'started', completed: 'completed', stopped: 'stopped'}

/** An IPv4-mapped IPv6 address as plain IPv4. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address
}

export interface ParsedAnnounce {
  request: AnnounceRequest
  compact: boolean
  noPeerId: boolean
}

/** Reads an announce query; `from` is the address the request came from. Throws TrackerRequestError. */
export function parseAnnounce(query: string, from: string): ParsedAnnounce {
  const params = parseQuery(query)
  const infoHash = hash20(one(params, 'info_hash'), 'info_hash')
  const peerId = hash20(one(params, 'peer_id'), 'peer_id')
  if (one(params, 'port') === undefined) throw new TrackerRequestError('missing port')
  const port = integer(params, 'port', 0, 1, 65535)
  integer(params, 'uploaded', 0)
  integer(params, 'downloaded', 0)
  // A client that does not say what it lacks is counted as a leecher.
  const left = integer(params, 'left', 1)
  const eventText = one(params, 'event')?.toString('latin1') ?? ''
  const event = EVENTS[eventText]
  if (event === undefined) throw new TrackerRequestError(`invalid event "${eventText.slice(0, 20)}"`)
  const ipParam = one(params, 'ip')?.toString('latin1')
  if (ipParam !== undefined && isIP(ipParam) === 0) throw new TrackerRequestError('invalid ip: not an IP address')
  const numWant = integer(params, 'numwant', -1, -1)
  return {
    request: {infoHash, peerId, ip: plainAddress(ipParam ?? from), port, left, event, numWant},
    compact: one(params, 'compact')?.toString('latin1') === '1',
    noPeerId: one(params, 'no_peer_id')?.toString('latin1') === '1',
  }
}

function compactPeers(peers: PeerEntry[], family: 4 | 6): Buffer {
  const size = family === 4 ? 6 : 18
  const out = Buffer.alloc(peers.length * size)
  let at = 0
  for (const peer of peers) {
    if (family === 4) {
      for (const part of peer.ip.split('.')) out[at++] = Number(part)
    } else {
      ipv6Bytes(peer.ip).copy(out, at)
      at += 16
    }
    out.writeUInt16BE(peer.port, at)
    at += 2
  }
  return out
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail = ''] = address.includes('::') ? address.split('::') : [address, undefined]
  const groups = (text: string | undefined) => (text ? text.split(':') : [])
  const left = groups(head)
  const right = groups(tail)
  const all = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left
  const out = Buffer.alloc(16)
  all.forEach((group, i) => out.writeUInt16BE(Number.parseInt(group, 16), i * 2))
  return out
}

/** The bencoded announce reply: compact (BEP 23, IPv6 in `peers6`) or the dictionary list. */
export function encodeAnnounceReply(reply: AnnounceReply, interval: number, compact: boolean, noPeerId: boolean): Buffer {
  const body: Record<string, unknown> = {interval, complete: reply.complete, incomplete: reply.incomplete}
  if (compact) {
    const v4 = reply.peers.filter((peer) => isIPv4(peer.ip))
    const v6 = reply.peers.filter((peer) => isIP(peer.ip) === 6 && !peer.ip.includes('.'))
    body.peers = compactPeers(v4, 4)
    if (v6.length > 0) body.peers6 = compactPeers(v6, 6)
  } else {
    body.peers = reply.peers.map((peer) => (noPeerId ? {ip: peer.ip, port: peer.port} : {'peer id': peer.peerId, ip: peer.ip, port: peer.port}))
  }
  return encode(body)
}

/** The info-hashes a scrape asks for; none means every torrent. Throws TrackerRequestError. */
export function parseScrape(query: string): Buffer[] {
  return (parseQuery(query).get('info_hash') ?? []).map((value) => hash20(value, 'info_hash'))
}

/** The bencoded BEP 48 scrape reply. */
export function encodeScrapeReply(files: Array<{infoHash: Buffer; counts: SwarmCounts}>): Buffer {
  const map = new Map<Buffer, unknown>()
  for (const {infoHash, counts} of files) map.set(infoHash, {complete: counts.complete, downloaded: counts.downloaded, incomplete: counts.incomplete})
  return encode({files: map})
}

export function encodeFailure(reason: string): Buffer {
  return encode({'failure reason': reason})
}
