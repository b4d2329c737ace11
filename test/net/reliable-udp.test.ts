import {expect} from 'chai'
import {createSocket, type RemoteInfo, type Socket} from 'node:dgram'

import {TimeoutError, UsageError} from '../../src/base/index.js'
import {MAX_PAYLOAD_BYTES, PayloadTooLargeError, ReliableSocket, type ReliableSocketOptions} from '../../src/net/reliable-udp.js'

/** Small timers so loss recovery takes milliseconds; the defaults (1 s) are tested elsewhere. */
const FAST: ReliableSocketOptions = {initialRtoMs: 50, minRtoMs: 20, tickMs: 5}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

interface Raw {
  socket: Socket
  port: number
  got: {data: Buffer; rinfo: RemoteInfo}[]
}

async function rawSocket(): Promise<Raw> {
  const socket = createSocket('udp4')
  const got: Raw['got'] = []
  socket.on('message', (data, rinfo) => got.push({data, rinfo}))
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return {socket, port: socket.address().port, got}
}

describe('ReliableSocket', function () {
  this.timeout(60_000)
  const sockets: ReliableSocket[] = []
  const raws: Socket[] = []
  const open = (options: ReliableSocketOptions = {}): ReliableSocket => {
    const socket = new ReliableSocket(options)
    sockets.push(socket)
    return socket
  }
  const raw = async (): Promise<Raw> => {
    const r = await rawSocket()
    raws.push(r.socket)
    return r
  }

  afterEach(async () => {
    await Promise.all(sockets.splice(0).map((socket) => socket.close()))
    for (const socket of raws.splice(0)) socket.close()
  })

  it('binds to a free port, reports it, and delivers a message with its sender', async () => {
    const a = open()
    const b = open()
    const from = await a.bind(0, '127.0.0.1')
    const to = await b.bind(0, '127.0.0.1')
    expect(to.port).to.be.above(0)
    expect(b.address()).to.deep.equal(to)
    const [receipt, message] = await Promise.all([a.sendTo(Buffer.from('ping'), to.port, '127.0.0.1'), b.recvFrom()])
    expect(message.data.toString()).to.equal('ping')
    expect(message).to.include({address: '127.0.0.1', port: from.port})
    expect(receipt.transmissions).to.equal(1)
  })

  it('acknowledges from its own port and delivers a duplicate once while acknowledging it again', async () => {
    const b = open()
    const {port} = await b.bind(0, '127.0.0.1')
    const r = await raw()
    const packet = Buffer.from([0, 0x12, 0x34, 0x56, 0x78, 0x61])
    r.socket.send(packet, port, '127.0.0.1')
    await until(() => r.got.length === 1)
    r.socket.send(packet, port, '127.0.0.1')
    await until(() => r.got.length === 2)
    for (const {data, rinfo} of r.got) {
      expect([...data]).to.deep.equal([1, 0x12, 0x34, 0x56, 0x78])
      expect(rinfo.port).to.equal(port)
    }
    expect((await b.recvFrom()).data.toString()).to.equal('a')
    expect(b.stats).to.include({received: 1, duplicates: 1})
  })

  it('keeps the same id apart for different senders', async () => {
    const b = open()
    const {port} = await b.bind(0, '127.0.0.1')
    const [r1, r2] = [await raw(), await raw()]
    const packet = Buffer.from([0, 0, 0, 0, 1, 0x78])
    r1.socket.send(packet, port, '127.0.0.1')
    r2.socket.send(packet, port, '127.0.0.1')
    await until(() => r1.got.length === 1 && r2.got.length === 1)
    expect(b.stats).to.include({received: 2, duplicates: 0})
  })

  it('counts and ignores malformed datagrams and acknowledgements of unknown ids, and keeps working', async () => {
    const b = open()
    const {port} = await b.bind(0, '127.0.0.1')
    const r = await raw()
    for (const junk of [[], [0], [0, 1, 2, 3], [7, 0, 0, 0, 1, 9], [1, 0, 0, 0, 1, 0]]) r.socket.send(Buffer.from(junk), port, '127.0.0.1')
    r.socket.send(Buffer.from([1, 0, 0, 0, 42]), port, '127.0.0.1')
    await until(() => b.stats.malformed === 5 && b.stats.unknownAcks === 1)
    expect(r.got).to.have.length(0)
    const a = open()
    await a.bind(0, '127.0.0.1')
    await Promise.all([a.sendTo(Buffer.from('still here'), port, '127.0.0.1'), b.recvFrom()])
    expect(b.stats.received).to.equal(1)
  })

  it('refuses a payload larger than one datagram, with a usage error', async () => {
    const a = open()
    await a.bind(0, '127.0.0.1')
    let error: unknown
    await a.sendTo(Buffer.alloc(MAX_PAYLOAD_BYTES + 1), 9, '127.0.0.1').catch((e) => (error = e))
    expect(error).to.be.instanceOf(PayloadTooLargeError).and.instanceOf(UsageError)
    expect((error as Error).message).to.match(/too large.*max 65502/)
    expect(a.stats.sent).to.equal(0)
  })

  it('carries the largest payload in one datagram', async () => {
    const a = open()
    const b = open()
    await a.bind(0, '127.0.0.1')
    const {port} = await b.bind(0, '127.0.0.1')
    const big = Buffer.alloc(MAX_PAYLOAD_BYTES, 7)
    const [, message] = await Promise.all([a.sendTo(big, port, '127.0.0.1'), b.recvFrom()])
    expect(message.data.equals(big)).to.equal(true)
  })

  it('keeps at most `window` messages in flight to a silent receiver and queues the rest', async () => {
    const r = await raw()
    const a = open({window: 8, initialRtoMs: 10_000})
    await a.bind(0, '127.0.0.1')
    const sends = Array.from({length: 100}, (_, i) => a.sendTo(Buffer.from(String(i)), r.port, '127.0.0.1').catch((error: unknown) => error))
    await until(() => r.got.length >= 8)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(r.got).to.have.length(8)
    expect(a.stats.sent).to.equal(8)
    const ids = r.got.map(({data}) => data.readUInt32BE(1))
    expect(new Set(ids).size).to.equal(8)
    await a.close()
    expect((await Promise.all(sends)).every((e) => e instanceof Error)).to.equal(true)
  })

  it('moves the window on as acknowledgements come back', async () => {
    const a = open({window: 4})
    const b = open()
    await a.bind(0, '127.0.0.1')
    const {port} = await b.bind(0, '127.0.0.1')
    const got: string[] = []
    const reading = (async () => {
      for await (const message of b) if (got.push(message.data.toString()) === 50) break
    })()
    await Promise.all(Array.from({length: 50}, (_, i) => a.sendTo(Buffer.from(String(i)), port, '127.0.0.1')))
    await reading
    expect(got.map(Number).sort((x, y) => x - y)).to.deep.equal(Array.from({length: 50}, (_, i) => i))
  })

  it('rejects with a TimeoutError when the deadline passes, retransmitting with a doubling timeout', async () => {
    const r = await raw()
    const arrivals: number[] = []
    r.socket.on('message', () => arrivals.push(performance.now()))
    const a = open({initialRtoMs: 100, minRtoMs: 100, tickMs: 5})
    await a.bind(0, '127.0.0.1')
    const start = Date.now()
    const error = await a.sendTo(Buffer.from('x'), r.port, '127.0.0.1', {timeoutMs: 800, retries: 20}).catch((e: unknown) => e)
    const elapsed = Date.now() - start
    expect(error).to.be.instanceOf(TimeoutError)
    expect(elapsed).to.be.within(780, 2500)
    // Due at 0, 100, 300 and 700 ms: each gap at least twice the one before (a loaded machine only adds delay).
    expect(r.got.length).to.be.within(3, 4)
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i])
    gaps.forEach((gap, i) => expect(gap).to.be.at.least(100 * 2 ** i - 2))
    expect(new Set(r.got.map(({data}) => data.toString('hex'))).size).to.equal(1)
  })

  it('rejects with a TimeoutError once its retries are spent', async () => {
    const r = await raw()
    const a = open({initialRtoMs: 20, minRtoMs: 20, tickMs: 5})
    await a.bind(0, '127.0.0.1')
    const error = await a.sendTo(Buffer.from('x'), r.port, '127.0.0.1', {retries: 2}).catch((e: unknown) => e)
    expect(error).to.be.instanceOf(TimeoutError)
    expect((error as Error).message).to.match(/after 3 transmissions/)
    expect(r.got).to.have.length(3)
    expect(a.stats.retransmits).to.equal(2)
  })

  it('cancels a send through its AbortSignal', async () => {
    const r = await raw()
    const a = open()
    await a.bind(0, '127.0.0.1')
    const controller = new AbortController()
    const sending = a.sendTo(Buffer.from('x'), r.port, '127.0.0.1', {signal: controller.signal}).catch((e: unknown) => e)
    controller.abort(new Error('stop'))
    expect(((await sending) as Error).message).to.equal('stop')
  })

  it('retransmits a lost message early once three later messages are acknowledged, long before its timeout', async () => {
    const r = await raw()
    let droppedFirst = false
    r.socket.removeAllListeners('message')
    r.socket.on('message', (data, rinfo) => {
      if (!droppedFirst && data.subarray(5).toString() === 'lost') {
        droppedFirst = true
        return
      }
      r.socket.send(Buffer.concat([Buffer.from([1]), data.subarray(1, 5)]), rinfo.port, rinfo.address)
    })
    const a = open() // the default timers: the first timeout would be 1 s
    await a.bind(0, '127.0.0.1')
    const lost = a.sendTo(Buffer.from('lost'), r.port, '127.0.0.1')
    await Promise.all(['b', 'c', 'd'].map((text) => a.sendTo(Buffer.from(text), r.port, '127.0.0.1')))
    const receipt = await lost
    expect(receipt.transmissions).to.equal(2)
    expect(receipt.elapsedMs).to.be.below(500)
    expect(a.stats.fastRetransmits).to.equal(1)
    expect(a.stats.retransmits).to.equal(1)
  })

  it('wraps packet ids around 2^32 safely', async () => {
    const a = open({firstId: 0xff_ff_ff_fe})
    const b = open()
    await a.bind(0, '127.0.0.1')
    const {port} = await b.bind(0, '127.0.0.1')
    const receipts = []
    for (let i = 0; i < 4; i++) receipts.push(await a.sendTo(Buffer.from(String(i)), port, '127.0.0.1'))
    expect(receipts.map((r) => r.id)).to.deep.equal([0xff_ff_ff_fe, 0xff_ff_ff_ff, 0, 1])
    const got = [await b.recvFrom(), await b.recvFrom(), await b.recvFrom(), await b.recvFrom()].map((m) => m.data.toString())
    expect(got).to.deep.equal(['0', '1', '2', '3'])
  })

  it('starts each socket at a random id', async () => {
    const b = open()
    const {port} = await b.bind(0, '127.0.0.1')
    const ids = []
    for (let i = 0; i < 3; i++) {
      const a = open()
      ids.push((await a.sendTo(Buffer.from('x'), port, '127.0.0.1')).id)
    }
    expect(new Set(ids).size).to.equal(3)
  })

  it('refuses (does not acknowledge) messages beyond a full receive queue, then takes them when read', async () => {
    const a = open(FAST)
    const b = open({receiveQueueMessages: 4})
    await a.bind(0, '127.0.0.1')
    const {port} = await b.bind(0, '127.0.0.1')
    const sends = Promise.all(Array.from({length: 10}, (_, i) => a.sendTo(Buffer.from(String(i)), port, '127.0.0.1')))
    await until(() => b.stats.refused > 0 && b.stats.received === 4)
    const got: string[] = []
    for await (const message of b) if (got.push(message.data.toString()) === 10) break
    await sends
    expect(got.map(Number).sort((x, y) => x - y)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(a.stats.retransmits).to.be.above(0)
  })

  it('delivers 10,000 messages exactly once with 10% loss injected both ways', async () => {
    const a = open(FAST)
    // The receiver drops 10% of the data packets it gets and 10% of the acknowledgements it sends.
    const b = open({...FAST, loss: {drop: 0.1, seed: 2024}})
    await a.bind(0, '127.0.0.1')
    const {port} = await b.bind(0, '127.0.0.1')
    const count = 10_000
    const seen = new Uint8Array(count)
    let distinct = 0
    let twice = 0
    const reading = (async () => {
      for await (const {data} of b) {
        const index = data.readUInt32BE(0)
        if (seen[index]) twice++
        seen[index] = 1
        if (++distinct === count) break
      }
    })()
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < count) {
        const message = Buffer.alloc(100)
        message.writeUInt32BE(next++, 0)
        await a.sendTo(message, port, '127.0.0.1', {timeoutMs: 30_000})
      }
    }
    await Promise.all(Array.from({length: 1024}, worker))
    await reading
    expect(distinct).to.equal(count)
    expect(twice).to.equal(0)
    expect(b.stats.received).to.equal(count)
    // About 10% of what passed b's loss layer: a's data packets in, b's acknowledgements out.
    // (An absolute count would move with the retransmissions a loaded machine adds.)
    const datagrams = a.stats.sent + a.stats.retransmits + b.stats.received + b.stats.duplicates
    expect(b.stats.injectedDrops / datagrams).to.be.within(0.08, 0.12)
    expect(b.stats.duplicates).to.be.above(0)
    expect(a.stats.retransmits).to.be.above(1000)
  })

  it('delivers exactly once through delay and reordering too', async () => {
    const a = open({...FAST, loss: {delay: 0.1, reorder: 0.1, delayMs: 40, seed: 5}})
    const b = open({...FAST, loss: {drop: 0.05, reorder: 0.1, seed: 6}})
    await a.bind(0, '127.0.0.1')
    const {port} = await b.bind(0, '127.0.0.1')
    const got: number[] = []
    const reading = (async () => {
      for await (const {data} of b) if (got.push(data.readUInt32BE(0)) === 1000) break
    })()
    await Promise.all(
      Array.from({length: 1000}, (_, i) => {
        const message = Buffer.alloc(4)
        message.writeUInt32BE(i)
        return a.sendTo(message, port, '127.0.0.1')
      }),
    )
    await reading
    expect(new Set(got).size).to.equal(1000)
    expect(got.some((n, i) => i > 0 && n < got[i - 1])).to.equal(true)
  })

  it('ends iteration and rejects pending calls when closed', async () => {
    const b = open()
    await b.bind(0, '127.0.0.1')
    const waiting = b.recvFrom().catch((e: unknown) => e)
    const iterating = (async () => {
      for await (const message of b) return message
      return 'ended'
    })()
    await b.close()
    expect(await iterating).to.equal('ended')
    expect((await waiting) as Error).to.have.property('code', 'ECLOSED')
  })
})
