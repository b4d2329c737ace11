/**
 * Acknowledged delivery over UDP (DESIGN.md §8), like `socket.socket` with a
 * `sendto()` that returns once the receiver has acknowledged the message.
 *
 * One dgram socket carries both directions: data packets out and in, and
 * acknowledgements, which always leave from the receiving socket's own port.
 * Retransmission follows RFC 6298 (rtt.ts) with one estimator per
 * destination. A single interval timer, running only while something is
 * pending, drives every retransmission and deadline: no timer per packet.
 */
import {createSocket, type RemoteInfo, type Socket} from 'node:dgram'
import {randomBytes} from 'node:crypto'
import {lookup as dnsLookup} from 'node:dns'
import {isIP, isIPv6} from 'node:net'
import {performance} from 'node:perf_hooks'

import {TemporaryError, TimeoutError, UsageError} from '../base/index.js'
import {formatHostPort, normalizeAddress, resolveHost} from './address.js'
import {Deque} from './deque.js'
import {LossyPath, type LossOptions} from './loss.js'
import {ACK, DATA, HEADER_BYTES, MAX_PAYLOAD_BYTES} from './packet.js'
import {DuplicateFilter} from './recent-ids.js'
import {RTT_DEFAULTS, RttEstimator, stripUndefined} from './rtt.js'
import {TimerWheel} from './timer-wheel.js'

export {MAX_PAYLOAD_BYTES} from './packet.js'
export type {LossOptions} from './loss.js'

/** A message larger than one datagram can carry; it is refused, never fragmented. */
export class PayloadTooLargeError extends UsageError {
  override readonly code: string = 'ETOOBIG'
}

/** The socket was closed while a call was waiting on it. */
export class SocketClosedError extends TemporaryError {
  override readonly code: string = 'ECLOSED'
}

export interface ReliableSocketOptions {
  /** RTO before the first RTT sample, in ms. Default 1000 (RFC 6298 §2.1). */
  initialRtoMs?: number
  /** Lower bound of the RTO, in ms. Default 200 (see rtt.ts for why not 1 s). */
  minRtoMs?: number
  /** Upper bound of the RTO, in ms. Default 60000 (RFC 6298 §2.5). */
  maxRtoMs?: number
  /** Period of the socket's one timer, in ms; also the clock granularity G. Default 10. */
  tickMs?: number
  /** Most unacknowledged messages in flight to one destination; the rest wait their turn. Default 256. */
  window?: number
  /**
   * Most ids between a destination's oldest unacknowledged message and the
   * next id sent; keeps retransmissions within the receivers' duplicate memory.
   * Default 32768; must not exceed half of `dedupPerSender` on the receiver.
   */
  maxIdSpan?: number
  /** Ids remembered per sender for duplicate suppression. Default 65536. */
  dedupPerSender?: number
  /** Senders remembered for duplicate suppression, least recently heard evicted. Default 1024. */
  dedupSenders?: number
  /** Ids remembered across all senders (about 40 bytes each). Default 1048576. */
  dedupTotal?: number
  /**
   * Received messages held for `recvFrom` before new ones are refused. A
   * refused message is not acknowledged, so its sender retransmits later:
   * the window then throttles the sender instead of this process buffering
   * without bound. Default 8192 messages and 32 MiB.
   */
  receiveQueueMessages?: number
  receiveQueueBytes?: number
  /** Default retransmissions for `sendTo`. Default 8. */
  retries?: number
  /** Default overall deadline for `sendTo`, in ms. Default 10000. */
  timeoutMs?: number
  /** Impair this socket's traffic, for tests and benchmarks. */
  loss?: LossOptions
  /** Kernel socket buffer sizes, in bytes (best effort). Default 4 MiB each. */
  bufferBytes?: number
  /** The first packet id, for tests of wrap-around; default a random 32-bit value. */
  firstId?: number
}

export interface SendOptions {
  /** Overall deadline for this message, in ms, including time queued behind the window. */
  timeoutMs?: number
  /** Most retransmissions after the first transmission on timer expiry (fast retransmits are bounded separately, by the same number). */
  retries?: number
  /** Cancels the send; the promise rejects with the signal's reason. */
  signal?: AbortSignal
}

/** What an acknowledged send reports. */
export interface SendReceipt {
  id: number
  transmissions: number
  /** Time from the first transmission to the acknowledgement, in ms. */
  elapsedMs: number
}

export interface ReceivedMessage {
  data: Buffer
  address: string
  port: number
}

export interface BoundAddress {
  address: string
  port: number
  family: string
}

export interface ReliableSocketStats {
  /** Data packets transmitted for the first time. */
  sent: number
  /** Data packets transmitted again: after a timeout, or early (see fastRetransmits). */
  retransmits: number
  /** Retransmissions made before the timeout, because later messages were acknowledged first. */
  fastRetransmits: number
  /** Messages acknowledged by their receivers. */
  acked: number
  /** Distinct messages received and delivered. */
  received: number
  /** Data packets received again: acknowledged again, not delivered. */
  duplicates: number
  /** Datagrams too short, of an unknown type, or acknowledgements with trailing bytes. */
  malformed: number
  /** Acknowledgements for ids not in flight to their sender. */
  unknownAcks: number
  /** Messages refused (not acknowledged) because the receive queue was full. */
  refused: number
  /** Datagrams dropped by loss injection, both directions. */
  injectedDrops: number
  /** Errors reported by the operating system when sending. */
  sendErrors: number
}

interface Pending {
  wheelSlot?: number
  peer: Peer
  /** The whole datagram; header bytes are filled at first transmission. */
  datagram: Buffer
  id: number
  state: 'queued' | 'inflight' | 'done'
  firstSentAt: number
  lastSentAt: number
  due: number
  rto: number
  transmissions: number
  /**
   * Retransmissions because the timer expired: `retries` bounds these (as
   * TCP's give-up limit counts timeouts), and fast retransmits separately,
   * so that acknowledgements of later messages cannot use up a message's
   * budget in one round trip.
   */
  timeouts: number
  /** Acknowledgements of messages sent after this one's last transmission. */
  laterAcks: number
  retries: number
  deadline: number
  timeoutMs: number
  resolve: (receipt: SendReceipt) => void
  reject: (error: unknown) => void
  signal?: AbortSignal
  onAbort?: () => void
}

interface Peer {
  key: string
  address: string
  port: number
  rtt: RttEstimator
  /** When the destination last acknowledged anything. */
  lastAckAt: number
  inflight: Map<number, Pending>
  queue: Deque<Pending>
}

interface Datagram {
  buffer: Buffer
  port: number
  address: string
}

type Waiter = (message: ReceivedMessage | undefined) => void

const DEFAULTS = {
  ...RTT_DEFAULTS,
  tickMs: RTT_DEFAULTS.granularityMs,
  window: 256,
  maxIdSpan: 32_768,
  dedupPerSender: 65_536,
  dedupSenders: 1024,
  dedupTotal: 1 << 20,
  receiveQueueMessages: 8192,
  receiveQueueBytes: 32 * 1024 * 1024,
  retries: 8,
  timeoutMs: 10_000,
  bufferBytes: 4 * 1024 * 1024,
}

const MAX_IDLE_PEERS = 1024

/** Acknowledgements of later messages that make an unacknowledged one count as lost (TCP's duplicate-ack threshold). */
const FAST_RETRANSMIT_ACKS = 3
/** How many of the oldest messages in flight each acknowledgement looks at for fast retransmit. */
const FAST_RETRANSMIT_SCAN = 64

/**
 * Destinations are resolved once, in peerFor, so sends carry IP literals;
 * answering those synchronously spares dgram a DNS round through the event
 * loop on every datagram.
 */
const literalLookup = ((hostname: string, options: unknown, callback: (...args: unknown[]) => void) => {
  const family = isIP(hostname)
  if (family === 0) return (dnsLookup as (...args: unknown[]) => void)(hostname, options, callback)
  callback(null, hostname, family)
}) as unknown as typeof dnsLookup

export class ReliableSocket implements AsyncIterable<ReceivedMessage> {
  private readonly options: typeof DEFAULTS & {loss?: LossOptions}
  private socket: Socket | undefined
  private binding: Promise<BoundAddress> | undefined
  private family: 4 | 6 | undefined
  private closed = false
  private nextId: number
  private readonly peers = new Map<string, Peer>()
  private readonly busyPeers = new Set<Peer>()
  private readonly deadlines: TimerWheel<Pending>
  private timer: NodeJS.Timeout | undefined
  private readonly duplicates: DuplicateFilter
  private readonly inbox = new Deque<ReceivedMessage>()
  private inboxBytes = 0
  private readonly waiters = new Deque<Waiter>()
  private lastSenderAddress = ''
  private lastSenderPort = 0
  private lastSenderKey = ''
  private readonly lossOut: LossyPath<Datagram> | undefined
  private readonly lossIn: LossyPath<Datagram> | undefined
  private readonly counters: ReliableSocketStats = {
    sent: 0,
    retransmits: 0,
    fastRetransmits: 0,
    acked: 0,
    received: 0,
    duplicates: 0,
    malformed: 0,
    unknownAcks: 0,
    refused: 0,
    injectedDrops: 0,
    sendErrors: 0,
  }

  constructor(options: ReliableSocketOptions = {}) {
    this.options = {...DEFAULTS, ...stripUndefined(options)}
    if (options.tickMs !== undefined) this.options.granularityMs = options.tickMs
    const {window, maxIdSpan, dedupPerSender} = this.options
    if (!(window >= 1 && maxIdSpan >= window && dedupPerSender >= 1)) {
      throw new UsageError('window must be at least 1 and maxIdSpan at least window')
    }
    this.nextId = options.firstId === undefined ? randomBytes(4).readUInt32BE(0) : options.firstId >>> 0
    this.deadlines = new TimerWheel(this.options.tickMs, performance.now())
    this.duplicates = new DuplicateFilter(dedupPerSender, this.options.dedupSenders, this.options.dedupTotal)
    const loss = this.options.loss
    if (loss) {
      const seed = loss.seed ?? 1
      const sides = loss.sides ?? 'both'
      if (sides !== 'receive') this.lossOut = new LossyPath(loss, seed, (d) => this.transmit(d.buffer, d.port, d.address))
      if (sides !== 'send') this.lossIn = new LossyPath(loss, seed ^ 0x9e37_79b9, (d) => this.onDatagram(d.buffer, d.address, d.port))
    }
  }

  /**
   * Binds to `port` (0 picks a free one) on `host` (default all IPv4
   * interfaces; an IPv6 literal makes an IPv6 socket). Resolves with the
   * bound address.
   */
  bind(port = 0, host = '0.0.0.0'): Promise<BoundAddress> {
    if (this.closed) return Promise.reject(new SocketClosedError('socket is closed'))
    if (this.binding) return Promise.reject(new UsageError('socket is already bound'))
    if (!Number.isInteger(port) || port < 0 || port > 65_535) return Promise.reject(new UsageError(`bad port ${port}`))
    const socket = createSocket({type: isIPv6(host) ? 'udp6' : 'udp4', lookup: literalLookup})
    socket.on('message', (buffer: Buffer, rinfo: RemoteInfo) => this.onMessage(buffer, rinfo))
    this.socket = socket
    this.binding = new Promise<BoundAddress>((resolve, reject) => {
      const fail = (error: Error): void => {
        socket.close()
        reject(new UsageError(`cannot bind udp ${formatHostPort(host, port)}: ${(error as NodeJS.ErrnoException).code ?? error.message}`, {cause: error}))
      }
      socket.once('error', fail)
      socket.bind(port, host, () => {
        socket.off('error', fail)
        // Errors after binding (e.g. ICMP unreachable surfacing on Linux) must not kill the socket.
        socket.on('error', () => this.counters.sendErrors++)
        this.tuneBuffers(socket)
        this.family = socket.address().family === 'IPv6' ? 6 : 4
        resolve(this.address())
      })
    })
    return this.binding
  }

  /** The bound address; throws if the socket is not bound yet. */
  address(): BoundAddress {
    if (!this.socket || !this.family) throw new UsageError('socket is not bound')
    const {address, port, family} = this.socket.address()
    return {address, port, family}
  }

  get stats(): Readonly<ReliableSocketStats> {
    const injectedDrops = (this.lossOut?.dropped ?? 0) + (this.lossIn?.dropped ?? 0)
    return {...this.counters, injectedDrops}
  }

  /**
   * Sends one message and resolves once it is acknowledged. Rejects with a
   * PayloadTooLargeError (a UsageError) above MAX_PAYLOAD_BYTES, with a
   * TimeoutError when the deadline passes or the retries are spent, and with
   * the signal's reason when aborted. An unbound socket binds to a free port.
   */
  sendTo(data: Uint8Array, port: number, host: string, options: SendOptions = {}): Promise<SendReceipt> {
    if (!(data instanceof Uint8Array)) return Promise.reject(new UsageError('data must be a Uint8Array or Buffer'))
    if (data.length > MAX_PAYLOAD_BYTES) {
      return Promise.reject(new PayloadTooLargeError(`message of ${data.length} bytes is too large for one datagram (max ${MAX_PAYLOAD_BYTES} bytes)`))
    }
    if (!Number.isInteger(port) || port < 1 || port > 65_535) return Promise.reject(new UsageError(`bad port ${port}`))
    const {timeoutMs = this.options.timeoutMs, retries = this.options.retries, signal} = options
    if (!(timeoutMs > 0) || !(retries >= 0)) return Promise.reject(new UsageError('timeoutMs must be positive and retries not negative'))
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.closed) return Promise.reject(new SocketClosedError('socket is closed'))
    const start = performance.now()
    const datagram = Buffer.allocUnsafe(HEADER_BYTES + data.length)
    datagram.set(data, HEADER_BYTES)
    // Fast path: a bound socket and a destination already known by its IP literal.
    const known = this.family === undefined ? undefined : this.peers.get(`${host}|${port}`)
    if (known) return this.enqueue(known, datagram, start, timeoutMs, retries, signal)
    return this.peerFor(host, port).then((peer) => {
      if (signal?.aborted) throw signal.reason
      if (this.closed) throw new SocketClosedError('socket is closed')
      return this.enqueue(peer, datagram, start, timeoutMs, retries, signal)
    })
  }

  private enqueue(peer: Peer, datagram: Buffer, start: number, timeoutMs: number, retries: number, signal: AbortSignal | undefined): Promise<SendReceipt> {
    return new Promise<SendReceipt>((resolve, reject) => {
      const pending: Pending = {
        peer,
        datagram,
        id: 0,
        state: 'queued',
        firstSentAt: 0,
        lastSentAt: 0,
        due: 0,
        rto: 0,
        transmissions: 0,
        timeouts: 0,
        laterAcks: 0,
        retries,
        deadline: start + timeoutMs,
        timeoutMs,
        resolve,
        reject,
        signal,
      }
      if (Number.isFinite(timeoutMs)) this.deadlines.add(pending, pending.deadline)
      if (signal) {
        pending.onAbort = () => this.fail(pending, signal.reason)
        signal.addEventListener('abort', pending.onAbort, {once: true})
      }
      peer.queue.push(pending)
      this.pump(peer)
      this.startTimer()
    })
  }

  /** Resolves with the next message; rejects with SocketClosedError once closed. */
  recvFrom(): Promise<ReceivedMessage> {
    return this.nextMessage().then((message) => {
      if (!message) throw new SocketClosedError('socket is closed')
      return message
    })
  }

  /** Messages as they arrive, until the socket is closed. */
  [Symbol.asyncIterator](): AsyncIterator<ReceivedMessage> {
    return {
      next: () => this.nextMessage().then((value) => (value ? {done: false, value} : {done: true, value: undefined})),
      return: async () => ({done: true, value: undefined}),
    }
  }

  /**
   * Rejects every unfinished send with SocketClosedError, ends receivers,
   * waits (at most a second) for acknowledgements already handed to the
   * kernel, and closes the socket and its timer.
   */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.stopTimer()
    const error = new SocketClosedError('socket closed before the message was acknowledged')
    for (const peer of this.peers.values()) {
      for (const pending of [...peer.inflight.values(), ...peer.queue.drain()]) this.fail(pending, error)
    }
    this.lossOut?.clear()
    this.lossIn?.clear()
    for (let waiter = this.waiters.shift(); waiter; waiter = this.waiters.shift()) waiter(undefined)
    this.inbox.drain()
    if (this.binding) await this.binding.catch(() => undefined)
    const socket = this.socket
    // Acknowledgements the kernel has not taken yet still go out (bounded wait).
    for (let waited = 0; socket && this.family && socket.getSendQueueCount() > 0 && waited < 1000; waited += 5) {
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve())).catch(() => undefined)
  }

  // --- sending -------------------------------------------------------------

  private async peerFor(host: string, port: number): Promise<Peer> {
    if (!this.binding) await this.bind(0, isIPv6(host) ? '::' : '0.0.0.0')
    else await this.binding
    const family = this.family ?? 4
    let address = normalizeAddress(await resolveHost(host, family))
    if (family === 6 && isIP(address) === 4) address = `::ffff:${address}`
    const key = `${normalizeAddress(address)}|${port}`
    let peer = this.peers.get(key)
    if (!peer) {
      this.forgetIdlePeers()
      peer = {key, address, port, rtt: this.newEstimator(), lastAckAt: 0, inflight: new Map(), queue: new Deque()}
      this.peers.set(key, peer)
    }
    return peer
  }

  private newEstimator(): RttEstimator {
    const {initialRtoMs, minRtoMs, maxRtoMs, granularityMs} = this.options
    return new RttEstimator({initialRtoMs, minRtoMs, maxRtoMs, granularityMs})
  }

  /** Keeps RTT estimates of recent destinations, but not of every one ever used. */
  private forgetIdlePeers(): void {
    if (this.peers.size < MAX_IDLE_PEERS) return
    for (const [key, peer] of this.peers) {
      if (peer.inflight.size === 0 && peer.queue.length === 0) this.peers.delete(key)
      if (this.peers.size < MAX_IDLE_PEERS / 2) break
    }
  }

  /** Moves queued messages into flight while the window allows. */
  private pump(peer: Peer): void {
    const {window, maxIdSpan} = this.options
    while (peer.queue.length > 0 && peer.inflight.size < window) {
      const oldest = peer.inflight.keys().next()
      if (!oldest.done && ((this.nextId - oldest.value) >>> 0) >= maxIdSpan) break
      const pending = peer.queue.shift() as Pending
      if (pending.state !== 'queued') continue
      this.launch(pending)
    }
  }

  private launch(pending: Pending): void {
    const {peer, datagram} = pending
    let id = this.nextId
    while (peer.inflight.has(id)) id = (id + 1) >>> 0
    this.nextId = (id + 1) >>> 0
    pending.id = id
    datagram[0] = DATA
    datagram.writeUInt32BE(id, 1)
    pending.state = 'inflight'
    pending.transmissions = 1
    pending.timeouts = 0
    pending.laterAcks = 0
    pending.firstSentAt = performance.now()
    pending.lastSentAt = pending.firstSentAt
    pending.rto = peer.rtt.rto
    pending.due = pending.firstSentAt + pending.rto
    peer.inflight.set(id, pending)
    this.busyPeers.add(peer)
    this.counters.sent++
    this.send(datagram, peer.port, peer.address)
  }

  private send(buffer: Buffer, port: number, address: string): void {
    if (this.lossOut) this.lossOut.pass({buffer, port, address}, performance.now())
    else this.transmit(buffer, port, address)
  }

  /**
   * No completion callback: each one would cost a trip through the event
   * loop per datagram. Failures arrive as the socket's 'error' event
   * (counted), and close() waits on the send queue instead.
   */
  private transmit(buffer: Buffer, port: number, address: string): void {
    if (!this.socket || this.closed) return
    this.socket.send(buffer, port, address)
  }

  private finish(pending: Pending): void {
    pending.state = 'done'
    this.deadlines.cancel(pending)
    if (pending.signal && pending.onAbort) pending.signal.removeEventListener('abort', pending.onAbort)
    const {peer} = pending
    if (peer.inflight.delete(pending.id)) {
      if (peer.inflight.size === 0) this.busyPeers.delete(peer)
      if (!this.closed) this.pump(peer)
    }
  }

  private fail(pending: Pending, error: unknown): void {
    if (pending.state === 'done') return
    this.finish(pending)
    pending.reject(error)
  }

  /** The key of a datagram's sender; consecutive datagrams mostly share one. */
  private senderKey(address: string, port: number): string {
    if (address !== this.lastSenderAddress || port !== this.lastSenderPort) {
      this.lastSenderAddress = address
      this.lastSenderPort = port
      this.lastSenderKey = `${normalizeAddress(address)}|${port}`
    }
    return this.lastSenderKey
  }

  private onAck(id: number, address: string, port: number): void {
    const peer = this.peers.get(this.senderKey(address, port))
    const pending = peer?.inflight.get(id)
    if (!peer || !pending) {
      this.counters.unknownAcks++
      return
    }
    const now = performance.now()
    peer.lastAckAt = now
    // Karn's rule: an ack of a retransmitted packet could answer any copy.
    if (pending.transmissions === 1) peer.rtt.sample(now - pending.firstSentAt)
    this.fastRetransmit(peer, pending, now)
    this.counters.acked++
    this.finish(pending)
    pending.resolve({id, transmissions: pending.transmissions, elapsedMs: now - pending.firstSentAt})
  }

  /**
   * Fast retransmit, per message (after RFC 5681 §3.2): when messages sent
   * after an unacknowledged one are acknowledged FAST_RETRANSMIT_ACKS times,
   * it was most likely lost, so it goes again now rather than when its timer
   * expires; under loss this keeps the window moving instead of stalling on
   * timeouts. Its timer is restarted, not backed off. Only the oldest
   * messages in flight are looked at, so an ack costs O(1) when nothing is
   * lost.
   */
  private fastRetransmit(peer: Peer, acked: Pending, now: number): void {
    let looked = 0
    for (const pending of peer.inflight.values()) {
      if (pending === acked || looked++ >= FAST_RETRANSMIT_SCAN) break
      if (pending.lastSentAt >= acked.lastSentAt || ++pending.laterAcks < FAST_RETRANSMIT_ACKS) continue
      // At most `retries` fast retransmits; after that the timer alone retransmits, or fails it.
      if (pending.transmissions - 1 - pending.timeouts >= pending.retries) continue
      pending.laterAcks = 0
      pending.lastSentAt = now
      pending.due = now + pending.rto
      pending.transmissions++
      this.counters.retransmits++
      this.counters.fastRetransmits++
      this.send(pending.datagram, peer.port, peer.address)
    }
  }

  // --- the one timer -------------------------------------------------------

  private startTimer(): void {
    if (this.timer || this.closed) return
    this.timer = setInterval(() => this.tick(), this.options.tickMs)
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  private tick(): void {
    const now = performance.now()
    for (const pending of this.deadlines.expire(now)) {
      this.fail(pending, new TimeoutError(`no acknowledgement from ${formatHostPort(pending.peer.address, pending.peer.port)} within ${pending.timeoutMs} ms`))
    }
    for (const peer of this.busyPeers) this.retransmitDue(peer, now)
    this.lossOut?.tick(now)
    this.lossIn?.tick(now)
    const idle = this.deadlines.size === 0 && this.busyPeers.size === 0 && !this.lossOut?.holding && !this.lossIn?.holding
    if (idle) this.stopTimer()
  }

  private retransmitDue(peer: Peer, now: number): void {
    let backedOff = false
    for (const pending of peer.inflight.values()) {
      if (now < pending.due) continue
      if (pending.timeouts >= pending.retries) {
        const where = formatHostPort(peer.address, peer.port)
        this.fail(pending, new TimeoutError(`no acknowledgement from ${where} after ${pending.transmissions} transmissions`))
        continue
      }
      // RFC 6298 §5.5 doubles the connection's RTO when its timer expires.
      // Our messages are acknowledged one by one, so one lost message says
      // little if others are being acknowledged: the estimator backs off
      // only when the destination has acknowledged nothing since this
      // packet went out, at most once per tick. The packet's own timeout
      // doubles on every retransmission regardless.
      if (!backedOff && peer.lastAckAt < pending.lastSentAt) {
        peer.rtt.backoff()
        backedOff = true
      }
      pending.rto = peer.rtt.backedOff(pending.rto)
      pending.due = now + pending.rto
      pending.lastSentAt = now
      pending.laterAcks = 0
      pending.transmissions++
      pending.timeouts++
      this.counters.retransmits++
      this.send(pending.datagram, peer.port, peer.address)
    }
  }

  // --- receiving -----------------------------------------------------------

  private onMessage(buffer: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return
    if (this.lossIn) {
      this.lossIn.pass({buffer, address: rinfo.address, port: rinfo.port}, performance.now())
      this.startTimer()
    } else {
      this.onDatagram(buffer, rinfo.address, rinfo.port)
    }
  }

  private onDatagram(buffer: Buffer, address: string, port: number): void {
    if (this.closed) return
    if (buffer.length < HEADER_BYTES) {
      this.counters.malformed++
      return
    }
    const type = buffer[0]
    const id = buffer.readUInt32BE(1)
    if (type === ACK && buffer.length === HEADER_BYTES) this.onAck(id, address, port)
    else if (type === DATA) this.onData(buffer, id, address, port)
    else this.counters.malformed++
  }

  private onData(buffer: Buffer, id: number, address: string, port: number): void {
    const sender = this.senderKey(address, port)
    if (this.duplicates.seen(sender, id)) {
      this.counters.duplicates++
      this.ack(buffer, port, address)
      return
    }
    const data = buffer.subarray(HEADER_BYTES)
    if (this.waiters.length === 0 && this.inboxFull(data.length)) {
      // Not acknowledged: the sender retransmits later, by which time we may have room.
      this.counters.refused++
      return
    }
    this.duplicates.remember(sender, id)
    this.ack(buffer, port, address)
    this.counters.received++
    const message: ReceivedMessage = {data, address, port}
    const waiter = this.waiters.shift()
    if (waiter) {
      waiter(message)
    } else {
      this.inbox.push(message)
      this.inboxBytes += data.length
    }
  }

  /** Turns the data packet's own header into the acknowledgement: no allocation. */
  private ack(dataPacket: Buffer, port: number, address: string): void {
    const ack = dataPacket.subarray(0, HEADER_BYTES)
    ack[0] = ACK
    this.send(ack, port, address)
  }

  private inboxFull(bytes: number): boolean {
    if (this.inbox.length === 0) return false
    return this.inbox.length >= this.options.receiveQueueMessages || this.inboxBytes + bytes > this.options.receiveQueueBytes
  }

  private nextMessage(): Promise<ReceivedMessage | undefined> {
    const message = this.inbox.shift()
    if (message) {
      this.inboxBytes -= message.data.length
      return Promise.resolve(message)
    }
    if (this.closed) return Promise.resolve(undefined)
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  private tuneBuffers(socket: Socket): void {
    try {
      socket.setRecvBufferSize(this.options.bufferBytes)
      socket.setSendBufferSize(this.options.bufferBytes)
    } catch {
      // The kernel caps these (net.core.rmem_max); the defaults still work, just with more loss under load.
    }
  }
}

