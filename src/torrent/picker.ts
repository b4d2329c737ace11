/**
 * The piece picker: which block to ask which peer for. A pure state machine
 * (no sockets, no clock of its own: callers pass `now` in ms, and a seeded
 * `random` in tests).
 *
 * - Pieces already started come first (finish what is open; bounded memory).
 * - Before the first piece is verified, a random piece (a quick first piece
 *   to trade with); after that, rarest first, ties broken at random.
 * - Endgame: once every missing block is requested, an idle peer may ask for
 *   blocks other peers are still fetching; the first copy wins, the caller
 *   cancels the rest.
 * - Each peer's request depth follows its measured rate and round-trip time
 *   (the bandwidth-delay product plus a margin), so a near, fast peer keeps
 *   more blocks in flight and carries more of the file.
 * - A piece that failed its hash check from several peers is re-fetched from
 *   one peer alone, so the next failure names the culprit.
 */
import {BLOCK_SIZE} from './wire.js'

export interface Block {
  index: number
  begin: number
  length: number
}

export interface PickerOptions {
  pieces: number
  pieceLength: number
  /** Total bytes; the last piece may be short. */
  length: number
  blockSize?: number
  /** A random number in [0, 1); seed it in tests. */
  random?: () => number
  /** Pieces already verified (resume). */
  have?: (index: number) => boolean
  /** Least and most blocks a peer may have in flight. */
  minDepth?: number
  maxDepth?: number
  /** Seconds of transfer to keep queued beyond one round trip. */
  queueSeconds?: number
}

interface PieceProgress {
  blocks: number
  /** Per block: how many peers have it requested now. */
  requested: Uint8Array
  received: Uint8Array
  receivedCount: number
  contributors: Set<string>
  /** After a hash failure from several peers: only this peer fetches it. */
  exclusive?: string
  suspect: boolean
}

export interface PeerStats {
  /** Bytes per second, smoothed. */
  rate: number
  /** Smallest recent round trip, ms (request sent to block received). */
  rtt: number
  downloaded: number
  inFlight: number
  depth: number
}

class PeerState {
  has: Uint8Array
  count = 0
  hasAll = false
  /** "index:begin" → time the request was sent. */
  readonly outstanding = new Map<string, number>()
  rate = 0
  rtt = Number.NaN
  /** Smallest round trip seen in each second, for the last RTT_SECONDS seconds. */
  private rttBuckets: Array<{second: number; min: number}> = []
  downloaded = 0
  private windowStart = Number.NaN
  private windowBytes = 0

  constructor(pieces: number) {
    this.has = new Uint8Array(pieces)
  }

  sample(bytes: number, sentAt: number | undefined, now: number): void {
    this.downloaded += bytes
    if (Number.isNaN(this.windowStart)) this.windowStart = sentAt ?? now
    this.windowBytes += bytes
    const elapsed = now - this.windowStart
    if (elapsed >= 200) {
      const instant = (this.windowBytes * 1000) / elapsed
      this.rate = this.rate === 0 ? instant : this.rate * 0.6 + instant * 0.4
      this.windowStart = now
      this.windowBytes = 0
    }
    if (sentAt !== undefined) {
      // The path's round trip is the least a block has taken lately: later
      // blocks of a deep queue also wait behind their predecessors, and
      // counting that wait would deepen the queue further (bufferbloat).
      const sample = Math.max(0.1, now - sentAt)
      const second = Math.floor(now / 1000)
      const last = this.rttBuckets.at(-1)
      if (last?.second === second) last.min = Math.min(last.min, sample)
      else this.rttBuckets.push({second, min: sample})
      while (this.rttBuckets.length > 0 && this.rttBuckets[0].second <= second - RTT_SECONDS) this.rttBuckets.shift()
      this.rtt = Math.min(...this.rttBuckets.map((b) => b.min))
    }
  }

  /** Before the first rate window closes, the bytes so far over the time so far. */
  currentRate(now: number): number {
    if (this.rate > 0) return this.rate
    const elapsed = now - this.windowStart
    return elapsed > 0 ? (this.windowBytes * 1000) / elapsed : 0
  }
}

const key = (index: number, begin: number): string => `${index}:${begin}`

/** How long a round-trip minimum is remembered. */
const RTT_SECONDS = 10

export class Picker {
  readonly pieces: number
  readonly blockSize: number
  private readonly have: Uint8Array
  private haveCount = 0
  private readonly availability: Uint32Array
  private readonly partial = new Map<number, PieceProgress>()
  private readonly peers = new Map<string, PeerState>()
  private readonly random: () => number
  private readonly minDepth: number
  private readonly maxDepth: number
  private readonly queueSeconds: number
  /** Pieces whose every block is received, waiting for the hash check. */
  private readonly checking = new Set<number>()

  constructor(private readonly options: PickerOptions) {
    this.pieces = options.pieces
    this.blockSize = options.blockSize ?? BLOCK_SIZE
    this.have = new Uint8Array(this.pieces)
    this.availability = new Uint32Array(this.pieces)
    this.random = options.random ?? Math.random
    this.minDepth = options.minDepth ?? 4
    this.maxDepth = options.maxDepth ?? 256
    this.queueSeconds = options.queueSeconds ?? 0.5
    for (let i = 0; i < this.pieces; i++) {
      if (options.have?.(i)) {
        this.have[i] = 1
        this.haveCount++
      }
    }
  }

  pieceSize(index: number): number {
    if (index < this.pieces - 1) return this.options.pieceLength
    return this.options.length - this.options.pieceLength * (this.pieces - 1)
  }

  blocksIn(index: number): number {
    return Math.ceil(this.pieceSize(index) / this.blockSize)
  }

  get verifiedCount(): number {
    return this.haveCount
  }

  get complete(): boolean {
    return this.haveCount === this.pieces
  }

  hasPiece(index: number): boolean {
    return this.have[index] === 1
  }

  // --- peers -------------------------------------------------------------

  addPeer(id: string): void {
    if (!this.peers.has(id)) this.peers.set(id, new PeerState(this.pieces))
  }

  removePeer(id: string): void {
    const peer = this.peers.get(id)
    if (!peer) return
    this.releaseAll(id)
    for (let i = 0; i < this.pieces; i++) if (peer.has[i]) this.availability[i]--
    this.peers.delete(id)
  }

  peerHave(id: string, index: number): void {
    const peer = this.peers.get(id)
    if (!peer || index < 0 || index >= this.pieces || peer.has[index]) return
    peer.has[index] = 1
    peer.count++
    this.availability[index]++
    if (peer.count === this.pieces) peer.hasAll = true
  }

  /** A BITFIELD (replaces what the peer had announced before). */
  peerBitfield(id: string, bits: Buffer): void {
    const peer = this.peers.get(id)
    if (!peer) return
    for (let i = 0; i < this.pieces; i++) {
      const set = (bits[i >> 3] & (0x80 >> (i & 7))) !== 0
      if (set && !peer.has[i]) {
        peer.has[i] = 1
        peer.count++
        this.availability[i]++
      } else if (!set && peer.has[i]) {
        peer.has[i] = 0
        peer.count--
        this.availability[i]--
      }
    }
    peer.hasAll = peer.count === this.pieces
  }

  peerHaveAll(id: string): void {
    for (let i = 0; i < this.pieces; i++) this.peerHave(id, i)
  }

  /** True when the peer has a piece we lack. */
  interesting(id: string): boolean {
    const peer = this.peers.get(id)
    if (!peer) return false
    for (let i = 0; i < this.pieces; i++) if (peer.has[i] && !this.have[i]) return true
    return false
  }

  /** How many pieces anyone connected can supply that we lack (0: nobody can help). */
  suppliable(): number {
    let n = 0
    for (let i = 0; i < this.pieces; i++) if (!this.have[i] && this.availability[i] > 0) n++
    return n
  }

  // --- request depth -------------------------------------------------------

  /** Blocks this peer may have in flight: its bandwidth-delay product plus queueSeconds of its rate. */
  depth(id: string, now: number): number {
    const peer = this.peers.get(id)
    if (!peer) return 0
    const rate = peer.currentRate(now)
    if (rate === 0 || Number.isNaN(peer.rtt)) return Math.max(this.minDepth, Math.min(this.maxDepth, 16))
    const seconds = (2 * peer.rtt) / 1000 + this.queueSeconds
    const wanted = Math.ceil((rate * seconds) / this.blockSize) + 2
    return Math.max(this.minDepth, Math.min(this.maxDepth, wanted))
  }

  stats(id: string, now: number): PeerStats | undefined {
    const peer = this.peers.get(id)
    if (!peer) return undefined
    return {rate: peer.currentRate(now), rtt: peer.rtt, downloaded: peer.downloaded, inFlight: peer.outstanding.size, depth: this.depth(id, now)}
  }

  // --- picking -------------------------------------------------------------

  private progress(index: number): PieceProgress {
    let progress = this.partial.get(index)
    if (!progress) {
      const blocks = this.blocksIn(index)
      progress = {blocks, requested: new Uint8Array(blocks), received: new Uint8Array(blocks), receivedCount: 0, contributors: new Set(), suspect: false}
      this.partial.set(index, progress)
    }
    return progress
  }

  private block(index: number, b: number): Block {
    const begin = b * this.blockSize
    return {index, begin, length: Math.min(this.blockSize, this.pieceSize(index) - begin)}
  }

  private usable(peer: PeerState, id: string, index: number): boolean {
    if (this.have[index] || !peer.has[index] || this.checking.has(index)) return false
    const progress = this.partial.get(index)
    return !progress?.exclusive || progress.exclusive === id
  }

  /** Takes unrequested blocks of `index` for the peer, up to `room`. */
  private takeFrom(id: string, peer: PeerState, index: number, room: number, now: number, out: Block[]): number {
    const progress = this.progress(index)
    if (progress.suspect && !progress.exclusive) progress.exclusive = id
    let taken = 0
    for (let b = 0; b < progress.blocks && taken < room; b++) {
      if (progress.requested[b] || progress.received[b]) continue
      const block = this.block(index, b)
      progress.requested[b] = 1
      peer.outstanding.set(key(index, block.begin), now)
      out.push(block)
      taken++
    }
    return taken
  }

  private hasUnrequested(index: number): boolean {
    const progress = this.partial.get(index)
    if (!progress) return true
    for (let b = 0; b < progress.blocks; b++) if (!progress.requested[b] && !progress.received[b]) return true
    return false
  }

  /** Blocks to request from this peer now, filling it up to its depth. */
  next(id: string, now: number): Block[] {
    const peer = this.peers.get(id)
    if (!peer) return []
    const out: Block[] = []
    let room = this.depth(id, now) - peer.outstanding.size
    if (room <= 0) return out

    // 1. Pieces already open, most complete first.
    const open = [...this.partial.entries()]
      .filter(([index]) => this.usable(peer, id, index) && this.hasUnrequested(index))
      .sort((a, b) => b[1].receivedCount - a[1].receivedCount)
    for (const [index] of open) {
      room -= this.takeFrom(id, peer, index, room, now, out)
      if (room <= 0) return out
    }

    // 2. New pieces: a random one while we have none, then rarest first.
    while (room > 0) {
      const index = this.haveCount === 0 && this.partial.size === 0 ? this.randomPiece(peer, id) : this.rarestPiece(peer, id)
      if (index < 0) break
      room -= this.takeFrom(id, peer, index, room, now, out)
    }
    if (room <= 0) return out

    // 3. Endgame: nothing left unrequested that this peer has; double up on blocks in flight elsewhere.
    if (!this.anyUnrequested(peer, id)) {
      for (const [index, progress] of this.partial) {
        if (!this.usable(peer, id, index) || progress.exclusive) continue
        for (let b = 0; b < progress.blocks && room > 0; b++) {
          if (progress.received[b] || progress.requested[b] >= 2) continue
          const block = this.block(index, b)
          const k = key(index, block.begin)
          if (peer.outstanding.has(k)) continue
          progress.requested[b]++
          peer.outstanding.set(k, now)
          out.push(block)
          room--
        }
        if (room <= 0) break
      }
    }
    return out
  }

  get endgame(): boolean {
    for (let i = 0; i < this.pieces; i++) if (!this.have[i] && this.hasUnrequested(i) && !this.checking.has(i)) return false
    return true
  }

  private anyUnrequested(peer: PeerState, id: string): boolean {
    for (let i = 0; i < this.pieces; i++) if (this.usable(peer, id, i) && this.hasUnrequested(i)) return true
    return false
  }

  private randomPiece(peer: PeerState, id: string): number {
    const candidates: number[] = []
    for (let i = 0; i < this.pieces; i++) if (this.usable(peer, id, i) && !this.partial.has(i)) candidates.push(i)
    if (candidates.length === 0) return -1
    return candidates[Math.floor(this.random() * candidates.length)]
  }

  private rarestPiece(peer: PeerState, id: string): number {
    let best = -1
    let bestAvailability = Number.POSITIVE_INFINITY
    let ties = 0
    for (let i = 0; i < this.pieces; i++) {
      if (this.partial.has(i) || !this.usable(peer, id, i)) continue
      const a = this.availability[i]
      if (a < bestAvailability) {
        best = i
        bestAvailability = a
        ties = 1
      } else if (a === bestAvailability) {
        // Reservoir sampling among equally rare pieces.
        ties++
        if (this.random() * ties < 1) best = i
      }
    }
    return best
  }

  // --- events --------------------------------------------------------------

  /**
   * A block arrived. Returns whether we wanted it, whether it completes its
   * piece (the caller then checks the hash), and which other peers still have
   * it requested (the caller cancels those: endgame).
   */
  received(id: string, block: Block, now: number): {wanted: boolean; pieceDone: boolean; cancel: string[]} {
    const peer = this.peers.get(id)
    const k = key(block.index, block.begin)
    const sentAt = peer?.outstanding.get(k)
    if (peer) {
      if (sentAt !== undefined) peer.outstanding.delete(k)
      peer.sample(block.length, sentAt, now)
    }
    const cancel: string[] = []
    if (block.index < 0 || block.index >= this.pieces || this.have[block.index] || this.checking.has(block.index)) {
      return {wanted: false, pieceDone: false, cancel}
    }
    const progress = this.partial.get(block.index)
    const b = block.begin / this.blockSize
    if (!progress || !Number.isInteger(b) || b >= progress.blocks || this.block(block.index, b).length !== block.length) {
      return {wanted: false, pieceDone: false, cancel}
    }
    if (progress.received[b]) return {wanted: false, pieceDone: false, cancel}
    if (sentAt !== undefined && progress.requested[b] > 0) progress.requested[b]--
    for (const [other, state] of this.peers) {
      if (other !== id && state.outstanding.delete(k)) {
        cancel.push(other)
        if (progress.requested[b] > 0) progress.requested[b]--
      }
    }
    progress.received[b] = 1
    progress.receivedCount++
    progress.contributors.add(id)
    const pieceDone = progress.receivedCount === progress.blocks
    if (pieceDone) this.checking.add(block.index)
    return {wanted: true, pieceDone, cancel}
  }

  /** A request will not be answered (reject, or timed out): someone else may take it. */
  release(id: string, block: Pick<Block, 'index' | 'begin'>): void {
    const peer = this.peers.get(id)
    const k = key(block.index, block.begin)
    if (!peer?.outstanding.delete(k)) return
    const progress = this.partial.get(block.index)
    const b = block.begin / this.blockSize
    if (progress && progress.requested[b] > 0) progress.requested[b]--
  }

  /** Every request of the peer is void (choke, disconnect). */
  releaseAll(id: string): Block[] {
    const peer = this.peers.get(id)
    if (!peer) return []
    const released: Block[] = []
    for (const k of [...peer.outstanding.keys()]) {
      const [index, begin] = k.split(':').map(Number)
      this.release(id, {index, begin})
      released.push({index, begin, length: 0})
    }
    for (const progress of this.partial.values()) if (progress.exclusive === id) progress.exclusive = undefined
    return released
  }

  /** Requests older than `timeoutMs`: released so others may take them; the caller cancels them. */
  expire(id: string, now: number, timeoutMs: number): Block[] {
    const peer = this.peers.get(id)
    if (!peer) return []
    const out: Block[] = []
    for (const [k, sentAt] of peer.outstanding) {
      if (now - sentAt < timeoutMs) continue
      const [index, begin] = k.split(':').map(Number)
      out.push({index, begin, length: Math.min(this.blockSize, this.pieceSize(index) - begin)})
    }
    for (const block of out) this.release(id, block)
    return out
  }

  /** The piece's hash matched. */
  verified(index: number): void {
    this.checking.delete(index)
    this.partial.delete(index)
    if (!this.have[index]) {
      this.have[index] = 1
      this.haveCount++
    }
  }

  /**
   * The piece's hash did not match: it is fetched again. Returns the peers
   * that sent its blocks; when there is one, it is the culprit. With several,
   * the piece is re-fetched from one peer alone.
   */
  failed(index: number): string[] {
    this.checking.delete(index)
    const progress = this.partial.get(index)
    const contributors = progress ? [...progress.contributors] : []
    this.partial.delete(index)
    const fresh = this.progress(index)
    fresh.suspect = contributors.length > 1
    // Blocks of this piece still requested from peers stay counted.
    for (const [, peer] of this.peers) {
      for (const k of peer.outstanding.keys()) {
        const [i, begin] = k.split(':').map(Number)
        if (i === index) fresh.requested[begin / this.blockSize]++
      }
    }
    return contributors
  }

  /** Bitfield of verified pieces. */
  bitfield(): Buffer {
    const bits = Buffer.alloc(Math.ceil(this.pieces / 8))
    for (let i = 0; i < this.pieces; i++) if (this.have[i]) bits[i >> 3] |= 0x80 >> (i & 7)
    return bits
  }
}
