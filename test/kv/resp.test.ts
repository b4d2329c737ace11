import {expect} from 'chai'

import {globToRegExp} from '../../src/kv/glob.js'
import {BufferPool, RequestParser, ProtocolError, encodeArgs, encodeCommand} from '../../src/kv/resp.js'
import {Ring, BUCKETS} from '../../src/kv/ring.js'

describe('kv RESP request parser, globs and ring', () => {
  it('parses RESP arrays split at any byte, and inline commands', () => {
    const wire = Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\nPING\r\n')
    for (let cut = 1; cut < wire.length; cut++) {
      const parser = new RequestParser()
      const requests = [...parser.feed(wire.subarray(0, cut)), ...parser.feed(wire.subarray(cut))]
      expect(requests.map((r) => r.args.map(String))).to.deep.equal([['SET', 'k', 'v\r\nxy'], ['PING']])
    }
  })

  it('discards an oversize bulk without buffering it and flags the request', () => {
    const parser = new RequestParser({maxBulk: 4})
    expect(parser.feed(Buffer.from('*2\r\n$3\r\nSET\r\n$10\r\n01234'))).to.deep.equal([])
    const [request] = parser.feed(Buffer.from('56789\r\n'))
    expect(request.oversize).to.equal(true)
  })

  it('encodes commands in one buffer with the same bytes as encodeCommand, numbers included', () => {
    const numbers = [0, 1, 9, 10, 99, 100, 123_456, 2 ** 31, 1_764_620_000_000 * 1024 + 1023, Number.MAX_SAFE_INTEGER, -1, -42, 1.5, 1e21, Number.NaN]
    for (const n of numbers) {
      const args = [Buffer.from('XSET'), Buffer.from('0:key'), n, 'é€', '']
      const one = encodeArgs(args)
      expect(Buffer.isBuffer(one)).to.equal(true)
      expect((one as Buffer).toString('latin1')).to.equal(Buffer.concat(encodeCommand(args)).toString('latin1'))
      const [parsed] = new RequestParser().feed(one as Buffer)
      expect(parsed.args.map((arg) => arg.toString())).to.deep.equal(['XSET', '0:key', String(n), 'é€', ''])
    }
  })

  it('throws a ProtocolError on malformed input', () => {
    expect(() => new RequestParser().feed(Buffer.from('*2\r\n+nope\r\n'))).to.throw(ProtocolError)
    expect(() => new RequestParser({maxInline: 10}).feed(Buffer.alloc(100, 65))).to.throw(ProtocolError)
    // A bulk whose length is wrong (no CRLF after its bytes), whole in one chunk or split.
    const wire = Buffer.from('*2\r\n$3\r\nGET\r\n$2\r\nabc\r\n')
    for (let cut = 1; cut <= wire.length; cut++) {
      const parser = new RequestParser()
      expect(() => [...parser.feed(wire.subarray(0, cut)), ...parser.feed(wire.subarray(cut))], `cut at ${cut}`).to.throw(ProtocolError)
    }
  })

  it('matches Redis glob patterns', () => {
    expect(globToRegExp('h?llo').test('hello')).to.equal(true)
    expect(globToRegExp('h*llo').test('heeeello')).to.equal(true)
    expect(globToRegExp('h[ae]llo').test('hallo')).to.equal(true)
    expect(globToRegExp('h[^e]llo').test('hello')).to.equal(false)
    expect(globToRegExp('h[a-b]llo').test('hbllo')).to.equal(true)
    expect(globToRegExp('a.b').test('axb')).to.equal(false)
  })

  it('gives every bucket RF distinct servers, spread evenly', () => {
    const ring = new Ring(3, 2)
    const load = [0, 0, 0]
    for (let b = 0; b < BUCKETS; b++) {
      const list = ring.preference(b)
      expect(new Set(list).size).to.equal(2)
      for (const s of list) load[s]++
    }
    for (const n of load) expect(n / (BUCKETS * 2)).to.be.within(0.2, 0.46)
  })

  it('assembles large bulk arguments in pooled buffers and reuses only what it handed out', () => {
    const pool = new BufferPool(1024, 4)
    const parser = new RequestParser({pool})
    const value = Buffer.alloc(300 * 1024)
    for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff
    const wire = Buffer.concat(encodeCommand(['XPUT', 'k', value, 'tail']))
    const feed = (bytes: Buffer) => {
      const out = []
      for (let at = 0; at < bytes.length; at += 65_536) out.push(...parser.feed(bytes.subarray(at, at + 65_536)))
      return out
    }
    const [first] = feed(wire)
    expect(first.args.map((arg) => arg.length)).to.deep.equal([4, 1, value.length, 4])
    expect(first.args[2].equals(value)).to.equal(true)
    expect(first.args[3].toString()).to.equal('tail')
    const memory = first.args[2].buffer
    pool.release(first.args[2])
    pool.release(first.args[2])
    pool.release(Buffer.alloc(300 * 1024))
    const [second] = feed(wire)
    expect(second.args[2].buffer).to.equal(memory)
    expect(second.args[2].equals(value)).to.equal(true)
    const [third] = feed(wire)
    expect(third.args[2].buffer).to.not.equal(memory)
  })
})

describe('BufferPool: a bound on what it lends', () => {
  const shared = (size: number) => Buffer.from(new SharedArrayBuffer(size))
  const isShared = (buffer: Buffer) => buffer.buffer instanceof SharedArrayBuffer

  it('gives plain memory past maxLentBytes, and its own kind again once buffers come back', () => {
    const pool = new BufferPool(0, 4, shared, 3 * 1024)
    const lent = [pool.take(1024), pool.take(1024), pool.take(1024)]
    expect(lent.every(isShared)).to.equal(true)
    // A consumer that keeps them: the fourth is plain, and releasing it is ignored.
    const plain = pool.take(1024)
    expect(isShared(plain)).to.equal(false)
    pool.release(plain)
    expect(isShared(pool.take(1024))).to.equal(false)
    // Handed back: lent again (the same memory), and still within the bound.
    pool.release(lent[0])
    const again = pool.take(1024)
    expect(again.buffer).to.equal(lent[0].buffer)
    expect(isShared(pool.take(1024))).to.equal(false)
    // Releasing twice frees its bytes only once.
    pool.release(lent[1])
    pool.release(lent[1])
    const third = pool.take(1024)
    expect(third.buffer).to.equal(lent[1].buffer)
    expect(isShared(pool.take(1024))).to.equal(false)
  })
})
