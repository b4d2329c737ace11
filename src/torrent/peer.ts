/**
 * One peer connection: the handshake (when dialling out, our handshake
 * and then nothing until the peer's arrives), framing, keep-alives, and
 * flow control for outgoing blocks. What the messages mean is the swarm's.
 */
import {EventEmitter} from 'node:events'
import type net from 'node:net'

import {encodeHandshake, encodeMessage, FrameReader, type Handshake, type Message, pieceHeader, WireError} from './wire.js'

const KEEPALIVE_MS = 60_000
/** A peer silent this long is dropped (BEP 3 suggests two minutes). */
const IDLE_MS = 150_000
const HANDSHAKE_MS = 15_000

export interface PeerEvents {
  handshake: [Handshake]
  message: [Message]
  close: [Error | undefined]
}

export class PeerConnection extends EventEmitter<PeerEvents> {
  readonly reader = new FrameReader()
  handshake?: Handshake
  /** "host:port" of the remote end as connected. */
  readonly address: string
  readonly host: string
  amChoking = true
  amInterested = false
  peerChoking = true
  peerInterested = false
  uploaded = 0
  downloaded = 0
  /** The peer's BEP 10 message ids by name, from its extended handshake. */
  extensions: Record<string, number> = {}
  /** From the extended handshake: metadata size (BEP 9), client name. */
  metadataSize?: number
  client?: string
  /** The peer's listening port, from its extended handshake (`p`) or because we dialled it. */
  listenPort?: number
  private closed = false
  private sentHandshake = false
  private lastReceived = Date.now()
  private lastSent = Date.now()
  private readonly timer: NodeJS.Timeout

  constructor(
    readonly socket: net.Socket,
    readonly outgoing: boolean,
    private readonly ours: {peerId: Buffer; infoHash?: Buffer; accept?: (infoHash: Buffer) => Buffer | undefined},
  ) {
    super()
    this.host = socket.remoteAddress?.replace(/^::ffff:/, '') ?? '?'
    this.address = `${this.host}:${socket.remotePort ?? 0}`
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (error) => this.close(error))
    socket.on('close', () => this.close())
    socket.on('end', () => this.close())
    this.timer = setInterval(() => this.tick(), 5_000)
    this.timer.unref()
    if (outgoing) this.sendHandshake()
  }

  get ready(): boolean {
    return this.handshake !== undefined && this.sentHandshake && !this.closed
  }

  get isClosed(): boolean {
    return this.closed
  }

  private sendHandshake(): void {
    if (this.sentHandshake || !this.ours.infoHash) return
    this.sentHandshake = true
    this.write(encodeHandshake(this.ours.infoHash, this.ours.peerId, {fast: true, extended: true}))
  }

  private tick(): void {
    const now = Date.now()
    if (!this.handshake && now - this.lastReceived > HANDSHAKE_MS) return this.close(new WireError('no handshake'))
    if (now - this.lastReceived > IDLE_MS) return this.close(new WireError('peer silent'))
    if (this.ready && now - this.lastSent > KEEPALIVE_MS) this.send({type: 'keep-alive'})
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return
    this.lastReceived = Date.now()
    this.reader.push(chunk)
    try {
      if (!this.handshake) {
        const shake = this.reader.handshake()
        if (!shake) return
        if (this.outgoing) {
          if (!shake.infoHash.equals(this.ours.infoHash!)) throw new WireError('peer answered for another torrent')
        } else {
          const infoHash = this.ours.accept?.(shake.infoHash)
          if (!infoHash) throw new WireError('peer asked for a torrent we do not have')
          this.ours.infoHash = infoHash
          this.sendHandshake()
        }
        this.handshake = shake
        this.emit('handshake', shake)
      }
      let message: Message | null
      while (!this.closed && (message = this.reader.next())) this.emit('message', message)
    } catch (error) {
      this.close(error as Error)
    }
  }

  /** Sends one message; returns false when the socket's buffer is full (wait for drain). */
  send(message: Message): boolean {
    return this.write(encodeMessage(message))
  }

  sendBlock(index: number, begin: number, block: Buffer): boolean {
    this.uploaded += block.length
    this.write(pieceHeader(index, begin, block.length))
    return this.write(block)
  }

  private write(data: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return false
    this.lastSent = Date.now()
    return this.socket.write(data)
  }

  /** Resolves when the socket can take more (or is closed). */
  drained(): Promise<void> {
    if (this.closed || !this.socket.writableNeedDrain) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done)
        this.off('close', done)
        resolve()
      }
      this.socket.on('drain', done)
      this.on('close', done)
    })
  }

  close(error?: Error): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.socket.destroy()
    this.emit('close', error)
  }
}
