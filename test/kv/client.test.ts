import {expect} from 'chai'
import net from 'node:net'

import {RespClient, RespReplyError, parserBufferContract, type RespValue} from '../../src/kv/client.js'
import {BufferPool} from '../../src/kv/resp.js'

/** A server that answers the first bytes it receives with `parts`, one write each, each after the previous one left. */
async function cannedServer(parts: Buffer[]): Promise<{port: number; close: () => void}> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    socket.once('data', async () => {
      for (const part of parts) {
        await new Promise<void>((resolve) => socket.write(part, () => resolve()))
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {port: (server.address() as net.AddressInfo).port, close: () => server.close()}
}

const WIRE = Buffer.from('$10\r\n0123456789\r\n+OK\r\n$-1\r\n-ERR bad thing\r\n$3\r\nabc\r\n*2\r\n$9\r\nabcdefghi\r\n:5\r\n$12\r\nhello world!\r\n')

async function replies(parts: Buffer[], pool?: BufferPool, count = 7): Promise<Array<RespValue | string>> {
  const server = await cannedServer(parts)
  const client = await RespClient.connect({host: '127.0.0.1', port: server.port, pool})
  try {
    const calls = Array.from({length: count}, () => client.call('X').catch((error: unknown) => (error instanceof RespReplyError ? `error ${error.message}` : Promise.reject(error))))
    return await Promise.all(calls)
  } finally {
    client.close()
    server.close()
  }
}

describe('kv RESP client', () => {
  it('finds in the installed redis-parser the private field pooled reads rely on (an upgrade that changes it fails here)', () => {
    // Without it the client silently falls back to unpooled replies; this test is what makes the change loud.
    expect(parserBufferContract()).to.equal(true)
  })

  it('reads integer replies, whatever the split, as redis-parser does, and fails on a malformed one', async function () {
    this.timeout(60_000)
    const wire = Buffer.from(':1\r\n:0\r\n:-42\r\n:1807011840000123\r\n+OK\r\n*1\r\n:3\r\n:7\r\n')
    const want = [1, 0, -42, 1_807_011_840_000_123, 'OK', [3], 7]
    const splits: Buffer[][] = [[...wire].map((byte) => Buffer.from([byte]))]
    for (let cut = 1; cut < wire.length; cut++) splits.push([wire.subarray(0, cut), wire.subarray(cut)])
    for (const parts of splits) {
      const got = await replies(parts, undefined, want.length)
      const plain = got.map((value) => (Buffer.isBuffer(value) ? value.toString() : value))
      expect(plain, `split into ${parts.map((part) => part.length).join('+')}`).to.deep.equal(want)
    }
    const server = await cannedServer([Buffer.from(':1\r\n:12x\r\n')])
    const client = await RespClient.connect({host: '127.0.0.1', port: server.port})
    try {
      const [first, second] = await Promise.allSettled([client.call('X'), client.call('X')])
      expect(first).to.deep.equal({status: 'fulfilled', value: 1})
      expect(second.status).to.equal('rejected')
      expect(String((second as PromiseRejectedResult).reason)).to.match(/bad integer reply/)
    } finally {
      client.close()
      server.close()
    }
  })

  it('reads large bulk replies into pooled buffers, whatever the split, and every other reply as before', async function () {
    this.timeout(60_000)
    const want = ['0123456789', 'OK', null, 'error ERR bad thing', 'abc', ['abcdefghi', 5], 'hello world!']
    const text = (value: RespValue | string): unknown =>
      Buffer.isBuffer(value) ? value.toString() : Array.isArray(value) ? value.map((item) => text(item)) : value
    const splits: Buffer[][] = [[...WIRE].map((byte) => Buffer.from([byte]))]
    for (let cut = 1; cut < WIRE.length; cut++) splits.push([WIRE.subarray(0, cut), WIRE.subarray(cut)])
    for (const parts of splits) {
      const pool = new BufferPool(8, 4)
      const got = await replies(parts, pool)
      expect(got.map((value) => text(value)), `split into ${parts.map((part) => part.length).join('+')}`).to.deep.equal(want)
      // A large reply whose header arrived whole came from the pool: handed back, it is the memory the pool gives next.
      if (parts[0].length < 5) continue
      const large = got[0] as Buffer
      pool.release(large)
      expect(pool.take(10).buffer, `split into ${parts.map((part) => part.length).join('+')}`).to.equal(large.buffer)
    }
  })

  it('reads large bulk replies straight from the socket into pooled buffers (onread), between small replies, whatever the split', async function () {
    this.timeout(60_000)
    // Two replies large enough for direct reads, seeded bytes, with small replies before, between and after.
    const large = (seed: number, length: number) => Buffer.from(Array.from({length}, (_, i) => (i * 31 + seed * 7 + (i >> 9)) & 0xff))
    const first = large(1, 3 * 1024 * 1024 + 5)
    const second = large(2, 1024 * 1024)
    const bulkOf = (data: Buffer) => Buffer.concat([Buffer.from(`$${data.length}\r\n`), data, Buffer.from('\r\n')])
    const wire = Buffer.concat([Buffer.from('+OK\r\n'), bulkOf(first), Buffer.from(':7\r\n$3\r\nabc\r\n'), bulkOf(second), Buffer.from('+DONE\r\n')])
    const firstEnd = 5 + bulkOf(first).length
    const secondData = firstEnd + ':7\r\n$3\r\nabc\r\n'.length + `$${second.length}\r\n`.length
    const cuts = [
      [wire.length],
      // Inside the first header, just after it, inside its data, in its CRLF, in the small replies, inside the second bulk, before the end.
      [3, 8, 12, 100_000, firstEnd - 1, firstEnd + 3, secondData - 2, secondData + 20_000, wire.length - 3, wire.length],
      Array.from({length: Math.ceil(wire.length / 65_537)}, (_, i) => Math.min(wire.length, (i + 1) * 65_537)),
    ]
    for (const ends of cuts) {
      const parts = ends.map((end, i) => wire.subarray(i === 0 ? 0 : ends[i - 1], end))
      const pool = new BufferPool(256 * 1024, 4)
      const got = await replies(parts, pool, 6)
      const label = `split at ${ends.join(',')}`
      expect(got.length, label).to.equal(6)
      expect(String(got[0]), label).to.equal('OK')
      expect(Buffer.compare(got[1] as Buffer, first), label).to.equal(0)
      expect(got[2], label).to.equal(7)
      expect(String(got[3]), label).to.equal('abc')
      expect(Buffer.compare(got[4] as Buffer, second), label).to.equal(0)
      expect(String(got[5]), label).to.equal('DONE')
      // A large reply whose header arrived at a reply boundary came from the pool (with the header
      // cut in two, redis-parser takes the reply, as before): handed back, the pool gives its memory again.
      if (ends === cuts[1]) continue
      pool.release(got[1] as Buffer)
      expect(pool.take(first.length).buffer, label).to.equal((got[1] as Buffer).buffer)
    }
  })
})
