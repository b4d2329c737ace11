/**
 * A swarm: every connection of one torrent, the tracker loop, uploading
 * (for a seed and for a downloader alike) and, while pieces are missing,
 * downloading through the picker. For a magnet the info dictionary is first
 * fetched from peers (BEP 9).
 */
import {createHash, randomBytes} from 'node:crypto'
import {EventEmitter} from 'node:events'
import net from 'node:net'

import {TimeoutError} from '../base/index.js'
import {announce, type AnnounceEvent, type AnnounceReply} from './announce.js'
import {
  decodeExtendedHandshake,
  decodeMetadataMessage,
  encodeExtendedHandshake,
  encodeMetadataMessage,
  METADATA_PIECE,
  MetadataCollector,
  UT_METADATA_ID,
} from './metadata.js'
import type {Metainfo} from './metainfo.js'
import {PeerConnection} from './peer.js'
import {type Block, Picker} from './picker.js'
import {checkBitfield, type Message, MAX_REQUEST, WireError} from './wire.js'

/** Where pieces are read from and (when downloading) written to. */
export interface PieceStore {
  has(index: number): boolean
  read(offset: number, length: number): Promise<Buffer>
  /** Absent for a seed: it has everything. */
  writePiece?(index: number, data: Buffer): Promise<void>
}

export interface SwarmOptions {
  infoHash: Buffer
  /** Known up front, or fetched from peers (magnet) before `store` is asked for. */
  meta?: Metainfo
  /** The store, once the metainfo is known (called once). */
  openStore: (meta: Metainfo) => Promise<PieceStore>
  trackers: string[]
  host: string
  port: number
  /** Peers to dial besides the trackers' (host:port). */
  peers?: string[]
  log?: (line: string) => void
  verbose?: boolean
  random?: () => number
  /** Most connections at once. */
  maxPeers?: number
  /** Longest wait between announces, whatever the tracker's interval (ms). */
  maxAnnounceMs?: number
  /** Upload limit in bytes per second, over all peers; 0 or absent: none. */
  uploadLimit?: number
}

export interface PeerReport {
  address: string
  client?: string
  peerId?: string
  downloaded: number
  uploaded: number
  rate?: number
  rtt?: number
}

export interface SwarmEvents {
  metadata: [Metainfo]
  piece: [number, number]
  complete: []
  ban: [string, string]
  error: [Error]
}

const CLIENT = 'disk-client 0.1'

export function makePeerId(): Buffer {
  return Buffer.concat([Buffer.from('-DC0001-'), randomBytes(12)])
}

export class Swarm extends EventEmitter<SwarmEvents> {
  readonly peerId = makePeerId()
  meta?: Metainfo
  private store?: PieceStore
  private picker?: Picker
  private server?: net.Server
  private readonly peers = new Map<PeerConnection, {raw: Message[]; metaRequested: boolean}>()
  private readonly known = new Set<string>()
  private readonly dialling = new Set<string>()
  private readonly failedAt = new Map<string, number>()
  private readonly banned = new Map<string, string>()
  private readonly finished: PeerReport[] = []
  private readonly buffers = new Map<number, Buffer>()
  private readonly writes = new Set<Promise<void>>()
  private metadata?: MetadataCollector
  private openingStore?: Promise<void>
  private tickTimer?: NodeJS.Timeout
  private announceTimer?: NodeJS.Timeout
  private stopped = false
  private announcedStarted = false
  private announcedCompleted = false
  private readonly selfAddresses = new Set<string>()
  listenPort = 0
  /** Bytes of piece data received (useful or not), this session. */
  fetched = 0
  /** Bytes received that failed a hash check or arrived twice. */
  wasted = 0
  uploaded = 0
  /** Bytes of verified pieces written this session. */
  verifiedBytes = 0
  lastProgress = Date.now()
  trackerErrors: string[] = []
  lastReply?: AnnounceReply

  constructor(private readonly options: SwarmOptions) {
    super()
    this.setMaxListeners(0)
  }

  private log(line: string): void {
    this.options.log?.(line)
  }

  private debug(line: string): void {
    if (this.options.verbose) this.options.log?.(line)
  }

  get complete(): boolean {
    return this.picker ? this.picker.complete : Boolean(this.meta && this.store && !this.store.writePiece)
  }

  get bannedPeers(): Array<{host: string; reason: string}> {
    return [...this.banned].map(([host, reason]) => ({host, reason}))
  }

  get connectedPeers(): number {
    return [...this.peers.keys()].filter((p) => p.ready).length
  }

  get knownPeers(): number {
    return this.known.size
  }

  left(): number {
    if (!this.meta) return 1
    if (!this.picker) return this.store?.writePiece ? this.meta.length : 0
    let left = 0
    for (let i = 0; i < this.meta.pieces.length; i++) if (!this.picker.hasPiece(i)) left += this.pieceSize(i)
    return left
  }

  private pieceSize(index: number): number {
    const meta = this.meta!
    return Math.min(meta.pieceLength, meta.length - index * meta.pieceLength)
  }

  /** Listens, opens the store when the metainfo is known, announces, dials. */
  async start(): Promise<void> {
    this.server = net.createServer((socket) => this.accept(socket))
    this.server.on('error', (error) => this.emit('error', error))
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject)
      this.server!.listen(this.options.port, this.options.host, () => {
        this.server!.off('error', reject)
        resolve()
      })
    })
    this.listenPort = (this.server.address() as net.AddressInfo).port
    this.selfAddresses.add(`${this.options.host}:${this.listenPort}`)
    if (this.options.meta) await this.useMeta(this.options.meta)
    else this.metadata = undefined
    for (const address of this.options.peers ?? []) this.known.add(address)
    this.tickTimer = setInterval(() => this.tick(), 250)
    void this.announceLoop('started')
    this.dialKnown()
  }

  get address(): string {
    return `${this.options.host}:${this.listenPort}`
  }

  private async useMeta(meta: Metainfo): Promise<void> {
    if (this.openingStore) return this.openingStore
    this.openingStore = (async () => {
      const store = await this.options.openStore(meta)
      this.meta = meta
      this.store = store
      if (store.writePiece) {
        this.picker = new Picker({
          pieces: meta.pieces.length,
          pieceLength: meta.pieceLength,
          length: meta.length,
          random: this.options.random,
          have: (i) => store.has(i),
        })
      }
      this.emit('metadata', meta)
      // Peers connected before the metadata: tell them what we have, replay what they told us.
      for (const [peer, state] of this.peers) {
        if (!peer.ready) continue
        this.greet(peer)
        for (const message of state.raw.splice(0)) this.onMessage(peer, message)
        this.refill(peer)
      }
      if (this.complete) this.onComplete()
    })()
    return this.openingStore
  }

  // --- tracker -------------------------------------------------------------

  private async announceAll(event: AnnounceEvent): Promise<number> {
    const trackers = this.options.trackers
    if (trackers.length === 0) return 30
    const host = this.options.host
    const bound = host !== '0.0.0.0' && host !== '::' ? host : undefined
    const replies = await Promise.allSettled(
      trackers.map((url) =>
        announce(url, {
          infoHash: this.options.infoHash,
          peerId: this.peerId,
          port: this.listenPort,
          uploaded: this.uploaded,
          downloaded: this.verifiedBytes,
          left: this.left(),
          event,
          ip: bound,
          localAddress: bound,
          timeoutMs: event === 'stopped' ? 2_000 : 8_000,
        }),
      ),
    )
    let interval = Number.POSITIVE_INFINITY
    this.trackerErrors = []
    for (const [i, result] of replies.entries()) {
      if (result.status === 'rejected') {
        const line = `tracker ${trackers[i]}: ${(result.reason as Error).message}`
        this.trackerErrors.push(line)
        this.debug(line)
        continue
      }
      this.lastReply = result.value
      interval = Math.min(interval, result.value.interval)
      for (const peer of result.value.peers) this.known.add(`${peer.host}:${peer.port}`)
      this.debug(`tracker ${trackers[i]}: ${result.value.peers.length} peers, interval ${result.value.interval}s`)
    }
    if (!Number.isFinite(interval)) interval = 5
    this.dialKnown()
    return interval
  }

  private async announceLoop(event: AnnounceEvent): Promise<void> {
    if (this.stopped) return
    const interval = await this.announceAll(event)
    if (event === 'started') this.announcedStarted = true
    if (this.stopped) return
    // While downloading with nobody to download from, ask again soon.
    const starving = !this.complete && (this.picker ? this.picker.suppliable() === 0 : true)
    let ms = Math.min(interval * 1000, this.options.maxAnnounceMs ?? Number.POSITIVE_INFINITY)
    if (starving) ms = Math.min(ms, 2_000)
    this.announceTimer = setTimeout(() => void this.announceLoop(undefined), ms)
  }

  // --- connections ---------------------------------------------------------

  private hostOf(address: string): string {
    return address.slice(0, address.lastIndexOf(':'))
  }

  private connectedTo(address: string): boolean {
    for (const peer of this.peers.keys()) {
      if (peer.address === address) return true
      if (peer.listenPort && `${peer.host}:${peer.listenPort}` === address) return true
    }
    return false
  }

  private dialKnown(): void {
    if (this.stopped) return
    const max = this.options.maxPeers ?? 50
    const now = Date.now()
    for (const address of this.known) {
      if (this.peers.size + this.dialling.size >= max) break
      if (this.selfAddresses.has(address) || this.dialling.has(address) || this.banned.has(this.hostOf(address))) continue
      if (this.connectedTo(address)) continue
      if (now - (this.failedAt.get(address) ?? 0) < 3_000) continue
      this.dial(address)
    }
  }

  private dial(address: string): void {
    const host = this.hostOf(address)
    const port = Number(address.slice(address.lastIndexOf(':') + 1))
    const bind = this.options.host !== '0.0.0.0' && this.options.host !== '::' ? this.options.host : undefined
    this.dialling.add(address)
    const socket = net.connect({host, port, localAddress: bind})
    const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), 5_000)
    socket.once('connect', () => {
      clearTimeout(timer)
      this.dialling.delete(address)
      if (this.stopped) return socket.destroy()
      const peer = new PeerConnection(socket, true, {peerId: this.peerId, infoHash: this.options.infoHash})
      peer.listenPort = port
      this.adopt(peer)
    })
    socket.once('error', (error) => {
      clearTimeout(timer)
      this.dialling.delete(address)
      this.failedAt.set(address, Date.now())
      this.debug(`dial ${address}: ${error.message}`)
    })
  }

  private accept(socket: net.Socket): void {
    const host = socket.remoteAddress?.replace(/^::ffff:/, '') ?? ''
    if (this.stopped || this.banned.has(host) || this.peers.size >= (this.options.maxPeers ?? 50) + 10) {
      socket.destroy()
      return
    }
    const peer = new PeerConnection(socket, false, {
      peerId: this.peerId,
      accept: (infoHash) => (infoHash.equals(this.options.infoHash) ? this.options.infoHash : undefined),
    })
    this.adopt(peer)
  }

  private adopt(peer: PeerConnection): void {
    this.peers.set(peer, {raw: [], metaRequested: false})
    peer.on('handshake', (shake) => {
      if (shake.peerId.equals(this.peerId)) {
        if (peer.outgoing && peer.listenPort) this.selfAddresses.add(`${peer.host}:${peer.listenPort}`)
        return peer.close(new WireError('connected to ourselves'))
      }
      for (const other of this.peers.keys()) {
        if (other !== peer && other.handshake?.peerId.equals(shake.peerId) && !other.isClosed) return peer.close(new WireError('duplicate connection'))
      }
      this.debug(`peer ${peer.address} connected (${peer.outgoing ? 'out' : 'in'}, fast ${shake.fast}, ext ${shake.extended})`)
      if (shake.extended) {
        peer.send({
          type: 'extended',
          id: 0,
          payload: encodeExtendedHandshake({metadataSize: this.meta?.info.length, port: this.listenPort, client: CLIENT}),
        })
      }
      if (this.meta) this.greet(peer)
      else if (shake.fast) peer.send({type: 'have-none'})
    })
    peer.on('message', (message) => {
      try {
        this.onMessage(peer, message)
      } catch (error) {
        peer.close(error as Error)
      }
    })
    peer.on('close', (error) => {
      this.debug(`peer ${peer.address} closed${error ? ': ' + error.message : ''}`)
      this.peers.delete(peer)
      if (peer.downloaded > 0 || peer.uploaded > 0) this.finished.push(this.report(peer))
      if (this.picker) this.picker.removePeer(this.key(peer))
      this.dialKnown()
    })
    if (this.picker) this.picker.addPeer(this.key(peer))
  }

  private key(peer: PeerConnection): string {
    return peer.address
  }

  /** Our bitfield (or have-all / have-none) and, for interested peers, unchoke. */
  private greet(peer: PeerConnection): void {
    if (!this.meta || !this.store) return
    const pieces = this.meta.pieces.length
    let count = 0
    const bits = Buffer.alloc(Math.ceil(pieces / 8))
    for (let i = 0; i < pieces; i++) {
      if (this.store.has(i)) {
        bits[i >> 3] |= 0x80 >> (i & 7)
        count++
      }
    }
    const fast = peer.handshake?.fast
    if (fast && count === pieces) peer.send({type: 'have-all'})
    else if (fast && count === 0) peer.send({type: 'have-none'})
    else if (count > 0) peer.send({type: 'bitfield', bits})
    if (this.picker) this.picker.addPeer(this.key(peer))
  }

  // --- messages ------------------------------------------------------------

  private onMessage(peer: PeerConnection, message: Message): void {
    const state = this.peers.get(peer)
    if (!state) return
    switch (message.type) {
      case 'extended':
        return this.onExtended(peer, message.id, message.payload)
      case 'interested':
        peer.peerInterested = true
        if (peer.amChoking && this.meta) {
          peer.amChoking = false
          peer.send({type: 'unchoke'})
        }
        return
      case 'not-interested':
        peer.peerInterested = false
        return
      case 'request':
        return this.onRequest(peer, message)
      case 'cancel':
        return this.cancelled(peer, message)
      case 'keep-alive':
      case 'port':
      case 'unknown':
      case 'suggest':
      case 'allowed-fast':
        return
    }
    // The rest concerns downloading; before the metadata, keep it for later.
    if (!this.meta) {
      if (message.type === 'choke') peer.peerChoking = true
      else if (message.type === 'unchoke') peer.peerChoking = false
      else state.raw.push(message)
      return
    }
    const picker = this.picker
    const id = this.key(peer)
    switch (message.type) {
      case 'bitfield':
        checkBitfield(message.bits, this.meta.pieces.length)
        picker?.peerBitfield(id, message.bits)
        break
      case 'have':
        if (message.index >= this.meta.pieces.length) throw new WireError(`have ${message.index} out of range`)
        picker?.peerHave(id, message.index)
        break
      case 'have-all':
        picker?.peerHaveAll(id)
        break
      case 'have-none':
        break
      case 'choke':
        peer.peerChoking = true
        picker?.releaseAll(id)
        return
      case 'unchoke':
        peer.peerChoking = false
        break
      case 'reject':
        picker?.release(id, message)
        break
      case 'piece':
        this.onBlock(peer, message.index, message.begin, message.block)
        break
    }
    this.refill(peer)
  }

  private onExtended(peer: PeerConnection, id: number, payload: Buffer): void {
    if (id === 0) {
      const shake = decodeExtendedHandshake(payload)
      peer.extensions = shake.m
      peer.client = shake.client
      peer.metadataSize = shake.metadataSize
      if (shake.port && !peer.outgoing) peer.listenPort = shake.port
      if (!this.meta) this.requestMetadata(peer)
      return
    }
    if (id !== UT_METADATA_ID) return
    const message = decodeMetadataMessage(payload)
    const theirs = peer.extensions.ut_metadata
    if (message.type === 'request') {
      if (!theirs) return
      const info = this.meta?.info
      if (!info || message.piece * METADATA_PIECE >= info.length) {
        peer.send({type: 'extended', id: theirs, payload: encodeMetadataMessage({type: 'reject', piece: message.piece})})
        return
      }
      const data = info.subarray(message.piece * METADATA_PIECE, (message.piece + 1) * METADATA_PIECE)
      peer.send({type: 'extended', id: theirs, payload: encodeMetadataMessage({type: 'data', piece: message.piece, totalSize: info.length, data})})
      return
    }
    if (message.type === 'data' && this.metadata && !this.meta) {
      const info = this.metadata.add(message.piece, message.data)
      if (info === 'bad') {
        this.log(`metadata from ${peer.address} does not match the info-hash`)
        this.metadata = undefined
        return
      }
      if (info) {
        void import('./metainfo.js').then(({parseInfo}) => {
          const meta = parseInfo(info, this.options.trackers)
          this.log(`metadata received: ${meta.name}, ${meta.length} bytes in ${meta.pieces.length} pieces`)
          return this.useMeta(meta)
        }).catch((error: unknown) => this.emit('error', error as Error))
      }
    }
  }

  private requestMetadata(peer: PeerConnection): void {
    const theirs = peer.extensions.ut_metadata
    if (!theirs || !peer.metadataSize) return
    this.metadata ??= new MetadataCollector(this.options.infoHash, peer.metadataSize)
    if (this.metadata.size !== peer.metadataSize) return
    const state = this.peers.get(peer)
    if (!state || state.metaRequested) return
    state.metaRequested = true
    for (const piece of this.metadata.missing()) {
      peer.send({type: 'extended', id: theirs, payload: encodeMetadataMessage({type: 'request', piece})})
    }
  }

  // --- uploading -----------------------------------------------------------

  private readonly queues = new Map<PeerConnection, {requests: Array<{index: number; begin: number; length: number}>; running: boolean}>()

  private onRequest(peer: PeerConnection, request: {index: number; begin: number; length: number}): void {
    const meta = this.meta
    const reject = (): void => {
      if (peer.handshake?.fast) peer.send({type: 'reject', ...request})
    }
    if (!meta || !this.store || peer.amChoking) return reject()
    if (request.index >= meta.pieces.length || !this.store.has(request.index)) return reject()
    if (request.length === 0 || request.length > MAX_REQUEST || request.begin + request.length > this.pieceSize(request.index)) {
      throw new WireError(`bad request ${request.index}:${request.begin}+${request.length}`)
    }
    let queue = this.queues.get(peer)
    if (!queue) {
      queue = {requests: [], running: false}
      this.queues.set(peer, queue)
    }
    if (queue.requests.length >= 2000) return reject()
    queue.requests.push(request)
    if (!queue.running) void this.serve(peer, queue)
  }

  private cancelled(peer: PeerConnection, request: {index: number; begin: number; length: number}): void {
    const queue = this.queues.get(peer)
    if (!queue) return
    const at = queue.requests.findIndex((r) => r.index === request.index && r.begin === request.begin && r.length === request.length)
    if (at >= 0) queue.requests.splice(at, 1)
  }

  private async serve(peer: PeerConnection, queue: {requests: Array<{index: number; begin: number; length: number}>; running: boolean}): Promise<void> {
    queue.running = true
    try {
      while (queue.requests.length > 0 && !peer.isClosed) {
        const request = queue.requests.shift()!
        const block = await this.readBlock(request.index, request.begin, request.length)
        await this.throttle(block.length)
        if (peer.isClosed) break
        if (!peer.sendBlock(request.index, request.begin, block)) await peer.drained()
        this.uploaded += block.length
      }
    } catch (error) {
      this.log(`cannot serve ${peer.address}: ${(error as Error).message}`)
      peer.close(error as Error)
    } finally {
      queue.running = false
      if (peer.isClosed) this.queues.delete(peer)
    }
  }

  /** When the upload limit next allows sending (ms since the epoch). */
  private uploadNextAt = 0

  /** Waits until the upload limit allows `bytes` more (bursts of at most 200 ms). */
  private async throttle(bytes: number): Promise<void> {
    const limit = this.options.uploadLimit
    if (!limit) return
    const now = Date.now()
    this.uploadNextAt = Math.max(this.uploadNextAt, now - 200) + (bytes * 1000) / limit
    const wait = this.uploadNextAt - now
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  }

  /** Whole pieces read once and kept a while: peers ask for a piece's blocks together. */
  private readonly pieceCache = new Map<number, Promise<Buffer>>()

  private async readBlock(index: number, begin: number, length: number): Promise<Buffer> {
    const meta = this.meta!
    if (meta.pieceLength > 4 * 1024 * 1024) return this.store!.read(index * meta.pieceLength + begin, length)
    let piece = this.pieceCache.get(index)
    if (piece) {
      // Most recently used last.
      this.pieceCache.delete(index)
      this.pieceCache.set(index, piece)
    } else {
      piece = this.store!.read(index * meta.pieceLength, this.pieceSize(index))
      piece.catch(() => this.pieceCache.delete(index))
      this.pieceCache.set(index, piece)
      const limit = Math.max(4, Math.floor((32 * 1024 * 1024) / meta.pieceLength))
      while (this.pieceCache.size > limit) this.pieceCache.delete(this.pieceCache.keys().next().value!)
    }
    return (await piece).subarray(begin, begin + length)
  }

  // --- downloading ---------------------------------------------------------

  private refill(peer: PeerConnection): void {
    const picker = this.picker
    if (!picker || !peer.ready || this.stopped) return
    const id = this.key(peer)
    const wanted = !picker.complete && picker.interesting(id)
    if (wanted && !peer.amInterested) {
      peer.amInterested = true
      peer.send({type: 'interested'})
    } else if (!wanted && peer.amInterested && picker.complete) {
      peer.amInterested = false
      peer.send({type: 'not-interested'})
    }
    if (!wanted || peer.peerChoking) return
    for (const block of picker.next(id, Date.now())) peer.send({type: 'request', ...block})
  }

  private onBlock(peer: PeerConnection, index: number, begin: number, data: Buffer): void {
    const picker = this.picker
    const meta = this.meta!
    peer.downloaded += data.length
    this.fetched += data.length
    if (!picker || index >= meta.pieces.length) {
      this.wasted += data.length
      return
    }
    const block: Block = {index, begin, length: data.length}
    const result = picker.received(this.key(peer), block, Date.now())
    if (!result.wanted) {
      this.wasted += data.length
      return
    }
    this.lastProgress = Date.now()
    let buffer = this.buffers.get(index)
    if (!buffer) {
      buffer = Buffer.allocUnsafe(this.pieceSize(index))
      this.buffers.set(index, buffer)
    }
    data.copy(buffer, begin)
    for (const other of result.cancel) {
      for (const p of this.peers.keys()) if (this.key(p) === other) p.send({type: 'cancel', index, begin, length: data.length})
    }
    if (result.pieceDone) this.checkPiece(index)
  }

  private checkPiece(index: number): void {
    const picker = this.picker!
    const buffer = this.buffers.get(index)!
    this.buffers.delete(index)
    const ok = createHash('sha1').update(buffer).digest().equals(this.meta!.pieces[index])
    if (!ok) {
      this.wasted += buffer.length
      const contributors = picker.failed(index)
      this.log(`piece ${index} failed its hash check (from ${contributors.join(', ')})`)
      if (contributors.length === 1) this.ban(contributors[0], `sent a bad piece (${index})`)
      return
    }
    picker.verified(index)
    const write: Promise<void> = this.store!.writePiece!(index, buffer)
      .then(() => {
        this.verifiedBytes += buffer.length
        this.emit('piece', index, buffer.length)
        for (const peer of this.peers.keys()) if (peer.ready) peer.send({type: 'have', index})
        if (picker.complete) this.onComplete()
      })
      .catch((error: unknown) => {
        this.emit('error', error as Error)
      })
      .finally(() => {
        this.writes.delete(write)
      })
    this.writes.add(write)
  }

  private ban(id: string, reason: string): void {
    const host = this.hostOf(id)
    if (this.banned.has(host)) return
    this.banned.set(host, reason)
    this.log(`banned ${host}: ${reason}`)
    this.emit('ban', host, reason)
    for (const peer of [...this.peers.keys()]) if (peer.host === host) peer.close(new WireError(`banned: ${reason}`))
  }

  private completing = false

  private onComplete(): void {
    if (this.completing) return
    this.completing = true
    void Promise.all([...this.writes]).then(() => {
      for (const peer of this.peers.keys()) this.refill(peer)
      if (this.announcedStarted && !this.announcedCompleted && this.picker) {
        this.announcedCompleted = true
        void this.announceAll('completed')
      }
      this.emit('complete')
    })
  }

  /** Replaces the store (a finished download now read from its final place). */
  replaceStore(store: PieceStore): void {
    this.store = store
    this.pieceCache.clear()
  }

  private tick(): void {
    if (this.stopped || !this.picker) return
    const now = Date.now()
    for (const peer of this.peers.keys()) {
      if (!peer.ready) continue
      const id = this.key(peer)
      const stats = this.picker.stats(id, now)
      const timeout = Math.max(10_000, (stats && !Number.isNaN(stats.rtt) ? stats.rtt : 0) * 20)
      const stale = this.picker.expire(id, now, timeout)
      for (const block of stale) peer.send({type: 'cancel', ...block})
      this.refill(peer)
    }
    if (this.peers.size < (this.options.maxPeers ?? 50)) this.dialKnown()
  }

  report(peer: PeerConnection): PeerReport {
    const stats = this.picker?.stats(this.key(peer), Date.now())
    return {
      address: peer.listenPort ? `${peer.host}:${peer.listenPort}` : peer.address,
      client: peer.client,
      peerId: peer.handshake ? peer.handshake.peerId.subarray(0, 8).toString('latin1').replace(/[^\x20-\x7e]/g, '?') : undefined,
      downloaded: peer.downloaded,
      uploaded: peer.uploaded,
      rate: stats ? Math.round(stats.rate) : undefined,
      rtt: stats && !Number.isNaN(stats.rtt) ? Math.round(stats.rtt * 10) / 10 : undefined,
    }
  }

  /** Every peer we exchanged data with this session, merged by address. */
  peerReports(): PeerReport[] {
    const merged = new Map<string, PeerReport>()
    for (const report of [...this.finished, ...[...this.peers.keys()].map((p) => this.report(p))]) {
      const seen = merged.get(report.address)
      if (seen) {
        seen.downloaded += report.downloaded
        seen.uploaded += report.uploaded
      } else merged.set(report.address, {...report})
    }
    return [...merged.values()].filter((r) => r.downloaded > 0 || r.uploaded > 0)
  }

  /** Why nothing is arriving, for the timeout message. */
  describeStall(): string {
    if (this.trackerErrors.length > 0 && this.known.size === 0) return this.trackerErrors[0]
    if (this.known.size === 0) return 'no peers known (the trackers listed none)'
    if (this.connectedPeers === 0) return `none of ${this.known.size} known peers could be reached`
    return `${this.connectedPeers} connected peers sent no data`
  }

  /** Announces stopped, closes every connection and the listener. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.tickTimer)
    clearTimeout(this.announceTimer)
    await Promise.all([...this.writes])
    for (const peer of [...this.peers.keys()]) peer.close()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
    if (this.announcedStarted) await this.announceAll('stopped').catch(() => {})
  }
}

export function stallError(swarm: Swarm, name: string, ms: number): TimeoutError {
  return new TimeoutError(`no peer supplied ${name} within ${ms} ms: ${swarm.describeStall()}`)
}

