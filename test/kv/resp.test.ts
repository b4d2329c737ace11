import {expect} from 'chai'

import {globToRegExp} from '../../src/kv/glob.js'
import {RequestParser, ProtocolError} from '../../src/kv/resp.js'
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

  it('throws a ProtocolError on malformed input', () => {
    expect(() => new RequestParser().feed(Buffer.from('*2\r\n+nope\r\n'))).to.throw(ProtocolError)
    expect(() => new RequestParser({maxInline: 10}).feed(Buffer.alloc(100, 65))).to.throw(ProtocolError)
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
})
