// A file region sent to a TCP socket by a pool thread (src/base/send-file.ts,
// its addon src/base/native.c): real sockets on 127.0.0.1. Byte-exact for
// any region, also when the receiver is slow (the thread waits for room);
// a short file, a receiver that goes away, a socket destroyed meanwhile and
// a receiver that stops reading each end it with its own error, and the
// thread is given back every time.
import {expect} from 'chai'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import {canSendFile, fileRegionOf, markFileRegion, sendFile, sendsInProgress, type FileRegion} from '../../src/base/index.js'
import {LocalBackend} from '../../src/backends/local/index.js'
import {seeded} from '../helpers/bytes.js'

/** A connected pair of sockets: `sender` on the server side, `receiver` the client. */
async function socketPair(): Promise<{sender: net.Socket; receiver: net.Socket; close: () => void}> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as net.AddressInfo
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve))
  const receiver = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => receiver.once('connect', resolve).once('error', reject))
  const sender = await accepted
  server.close()
  return {
    sender,
    receiver,
    close() {
      sender.destroy()
      receiver.destroy()
    },
  }
}

/** Everything the receiver gets until the sender's side ends. */
function collect(receiver: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  receiver.on('data', (chunk: Buffer) => chunks.push(chunk))
  return new Promise((resolve, reject) => {
    receiver.once('end', () => resolve(Buffer.concat(chunks)))
    receiver.once('error', reject)
  })
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('base: sending a file region to a socket', function () {
  this.timeout(30_000)
  const size = 12 * 1024 * 1024 + 123
  const content = seeded(size, 'send-file')
  let dir: string
  let file: string
  let fd: number

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'send-file-'))
    file = path.join(dir, 'f')
    fs.writeFileSync(file, content)
    fd = fs.openSync(file, 'r')
  })

  after(() => {
    fs.closeSync(fd)
    fs.rmSync(dir, {recursive: true, force: true})
  })

  afterEach(async () => {
    // Every send gives its pool thread back, whatever ended it.
    await until(() => sendsInProgress() === 0, 'the sends to end')
  })

  it('is available on a plain TCP socket (the addon is built by `npm run build`)', async () => {
    const pair = await socketPair()
    try {
      expect(canSendFile(pair.sender)).to.equal(true)
      pair.sender.destroy()
      expect(canSendFile(pair.sender)).to.equal(false)
      expect(canSendFile(null)).to.equal(false)
    } finally {
      pair.close()
    }
  })

  for (const [name, region] of [
    ['the whole file', {offset: 0, length: size}],
    ['a region from an odd offset', {offset: 1_000_003, length: 5_000_001}],
    ['one byte', {offset: size - 1, length: 1}],
    ['nothing', {offset: 10, length: 0}],
  ] as Array<[string, Omit<FileRegion, 'fd'>]>) {
    it(`sends ${name} byte-exact, after what was written before it`, async () => {
      const pair = await socketPair()
      try {
        const received = collect(pair.receiver)
        pair.sender.write('header\r\n')
        await sendFile(pair.sender, {fd, ...region})
        pair.sender.end('trailer')
        const bytes = await received
        const expected = Buffer.concat([Buffer.from('header\r\n'), content.subarray(region.offset, region.offset + region.length), Buffer.from('trailer')])
        expect(bytes.length).to.equal(expected.length)
        expect(bytes.equals(expected)).to.equal(true)
      } finally {
        pair.close()
      }
    })
  }

  it('waits for a slow receiver (the socket full many times over) and still sends every byte', async () => {
    const pair = await socketPair()
    try {
      // The receiver takes a little every few milliseconds: the thread finds the socket full again and again.
      const chunks: Buffer[] = []
      let total = 0
      const drained = new Promise<void>((resolve) => {
        pair.receiver.pause()
        const timer = setInterval(() => {
          let chunk: Buffer | null
          let taken = 0
          while (taken < 2 << 20 && (chunk = pair.receiver.read() as Buffer | null)) {
            chunks.push(chunk)
            taken += chunk.length
            total += chunk.length
          }

          if (total === size) {
            clearInterval(timer)
            resolve()
          }
        }, 5)
      })
      await sendFile(pair.sender, {fd, offset: 0, length: size})
      await drained
      expect(Buffer.concat(chunks).equals(content)).to.equal(true)
    } finally {
      pair.close()
    }
  })

  it('fails with ENODATA when the file is shorter than the region', async () => {
    const pair = await socketPair()
    try {
      collect(pair.receiver).catch(() => undefined)
      const error = await sendFile(pair.sender, {fd, offset: size - 100, length: 1000}).then(
        () => undefined,
        (caught: NodeJS.ErrnoException) => caught,
      )
      expect(error?.code).to.equal('ENODATA')
      expect(error?.message).to.contain('100 of 1000 bytes sent')
    } finally {
      pair.close()
    }
  })

  it('fails when the receiver goes away (EPIPE or ECONNRESET; ECANCELED once Node has seen the reset and closed its socket)', async () => {
    const pair = await socketPair()
    try {
      pair.sender.on('error', () => undefined) // the reset, seen on the read side
      pair.receiver.once('data', () => pair.receiver.destroy())
      const error = await sendFile(pair.sender, {fd, offset: 0, length: size}).then(
        () => undefined,
        (caught: NodeJS.ErrnoException) => caught,
      )
      expect(error?.code).to.be.oneOf(['EPIPE', 'ECONNRESET', 'ECANCELED'])
    } finally {
      pair.close()
    }
  })

  it('stops with ECANCELED when the socket is destroyed meanwhile', async () => {
    const pair = await socketPair()
    try {
      pair.receiver.pause() // takes nothing: the thread waits for room
      const sending = sendFile(pair.sender, {fd, offset: 0, length: size})
      await until(() => pair.receiver.readableLength > 0 || (pair.receiver as unknown as {bytesRead: number}).bytesRead > 0, 'the first bytes')
      const started = Date.now()
      pair.sender.destroy()
      const error = await sending.then(
        () => undefined,
        (caught: NodeJS.ErrnoException) => caught,
      )
      expect(error?.code).to.equal('ECANCELED')
      expect(Date.now() - started).to.be.below(5000)
    } finally {
      pair.close()
    }
  })

  it('fails with ETIMEDOUT when the receiver takes nothing for the idle time', async () => {
    const pair = await socketPair()
    try {
      pair.receiver.pause()
      const error = await sendFile(pair.sender, {fd, offset: 0, length: size}, 300).then(
        () => undefined,
        (caught: NodeJS.ErrnoException) => caught,
      )
      expect(error?.code).to.equal('ETIMEDOUT')
      expect(error?.message).to.contain(`of ${size} bytes sent`)
    } finally {
      pair.close()
    }
  })

  it("marks the local backend's read streams with their region, until they start reading", async () => {
    const backend = new LocalBackend(dir)
    const whole = await backend.openRead('/f')
    expect(fileRegionOf(whole)).to.include({offset: 0, length: size})
    const chunks = await backend.openRead('/f', {recycled: true})
    expect(fileRegionOf(chunks)).to.include({offset: 0, length: size})
    const ranged = await backend.openRead('/f', {range: {offset: 7, count: 100}})
    expect(fileRegionOf(ranged)).to.include({offset: 7, length: 100})
    const toEnd = await backend.openRead('/f', {range: {offset: size - 5}})
    expect(fileRegionOf(toEnd)).to.include({offset: size - 5, length: 5})
    // Dropped behind as read: not a region to send as it is.
    const dropping = await backend.openRead('/f', {recycled: true, dropBehind: true})
    expect(fileRegionOf(dropping)).to.equal(undefined)
    // Once read from, the stream is no longer the whole region.
    await new Promise((resolve) => whole.once('readable', resolve))
    whole.read(10)
    expect(fileRegionOf(whole)).to.equal(undefined)
    for (const stream of [whole, chunks, ranged, toEnd, dropping]) stream.destroy()
    // Any other stream has none.
    expect(fileRegionOf(markFileRegion(Readable.from([]), {fd: 1, offset: 0, length: 0}))).to.deep.equal({fd: 1, offset: 0, length: 0})
    expect(fileRegionOf(Readable.from([]))).to.equal(undefined)
  })
})
