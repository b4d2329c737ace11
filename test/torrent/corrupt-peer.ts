// A seeder of our own that has every piece and answers every request with
// wrong bytes: the corrupt peer of the acceptance tests.
import {randomBytes} from 'node:crypto'
import net from 'node:net'

import {announce, encodeHandshake, FrameReader, type Metainfo, pieceHeader, encodeMessage} from '../../src/torrent/index.js'

export class CorruptPeer {
  /** The remote address of every connection, in order. */
  readonly connections: string[] = []
  blocksSent = 0
  private readonly sockets = new Set<net.Socket>()
  private readonly peerId = Buffer.concat([Buffer.from('-XX0001-'), randomBytes(12)])

  private constructor(
    private readonly server: net.Server,
    private readonly meta: Metainfo,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(meta: Metainfo, host: string): Promise<CorruptPeer> {
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(0, host, resolve))
    const peer = new CorruptPeer(server, meta, host, (server.address() as net.AddressInfo).port)
    server.on('connection', (socket) => peer.serve(socket))
    return peer
  }

  /** Tells the tracker we are a seeder at host:port. */
  async announce(tracker: string): Promise<void> {
    await announce(tracker, {
      infoHash: this.meta.infoHash,
      peerId: this.peerId,
      port: this.port,
      uploaded: 0,
      downloaded: 0,
      left: 0,
      event: 'started',
      ip: this.host,
      localAddress: this.host,
    })
  }

  private serve(socket: net.Socket): void {
    this.connections.push(socket.remoteAddress?.replace(/^::ffff:/, '') ?? '?')
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    socket.on('error', () => {})
    const reader = new FrameReader()
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk)
      try {
        if (!reader.handshakeRead) {
          const shake = reader.handshake()
          if (!shake) return
          socket.write(encodeHandshake(this.meta.infoHash, this.peerId, {fast: true, extended: false}))
          socket.write(encodeMessage({type: 'have-all'}))
        }
        for (let message = reader.next(); message; message = reader.next()) {
          if (message.type === 'interested') socket.write(encodeMessage({type: 'unchoke'}))
          if (message.type === 'request') {
            socket.write(pieceHeader(message.index, message.begin, message.length))
            socket.write(randomBytes(message.length))
            this.blocksSent++
          }
        }
      } catch {
        socket.destroy()
      }
    })
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise((resolve) => this.server.close(resolve))
  }
}
