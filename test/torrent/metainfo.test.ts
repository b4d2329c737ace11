import {expect} from 'chai'
import {createHash} from 'node:crypto'

import {bdecode, bencode, encodeTorrent, magnetUri, parseInfo, parseMagnet, parseTorrent, pieceSize, TorrentFormatError} from '../../src/torrent/index.js'
import {prngStream} from './helpers.js'

const sha1 = (data: Buffer): Buffer => createHash('sha1').update(data).digest()

function singleInfo(length = 40_000, pieceLength = 16_384): Buffer {
  const pieces = Buffer.alloc(Math.ceil(length / pieceLength) * 20, 7)
  return bencode({name: 'movie.bin', 'piece length': pieceLength, length, pieces})
}

function expectFormatError(run: () => unknown, pattern: RegExp): void {
  let caught: unknown
  try {
    run()
  } catch (error) {
    caught = error
  }
  expect(caught, 'expected a TorrentFormatError').to.be.instanceOf(TorrentFormatError)
  expect((caught as Error).message).to.match(pattern)
  expect((caught as TorrentFormatError).exitCode).to.equal(2)
}

describe('torrent metainfo', () => {
  it('round-trips a single-file torrent: fields, pieces, trackers and the info-hash of the raw info bytes', () => {
    const info = singleInfo(40_000)
    const torrent = encodeTorrent(info, ['http://127.0.0.1:1/announce', 'udp://127.0.0.1:2', 'http://127.0.0.1:1/announce'], {createdBy: 'test'})
    const meta = parseTorrent(torrent)
    expect(meta.infoHash.equals(sha1(info))).to.equal(true)
    expect(meta.infoHashHex).to.equal(sha1(info).toString('hex'))
    expect(meta).to.include({name: 'movie.bin', pieceLength: 16_384, length: 40_000, multiFile: false})
    expect(meta.files).to.deep.equal([{path: ['movie.bin'], length: 40_000, offset: 0}])
    expect(meta.pieces).to.have.length(3)
    expect(meta.pieces.every((piece) => piece.length === 20)).to.equal(true)
    expect(meta.announce).to.deep.equal(['http://127.0.0.1:1/announce', 'udp://127.0.0.1:2'])
    expect(meta.info.equals(info)).to.equal(true)
    expect([0, 1, 2].map((i) => pieceSize(meta, i))).to.deep.equal([16_384, 16_384, 40_000 - 2 * 16_384])
    const again = parseTorrent(encodeTorrent(meta.info, meta.announce))
    expect(again.infoHashHex).to.equal(meta.infoHashHex)
  })

  it('hashes the info dictionary exactly as found, even when its keys are not in canonical order', () => {
    const pieces = Buffer.alloc(20, 1)
    const unsorted = Buffer.concat([Buffer.from('d4:name1:a6:lengthi5e12:piece lengthi16384e6:pieces20:'), pieces, Buffer.from('e')])
    const torrent = Buffer.concat([Buffer.from('d8:announce9:http://x/4:info'), unsorted, Buffer.from('e')])
    const meta = parseTorrent(torrent)
    expect(meta.infoHashHex).to.equal(sha1(unsorted).toString('hex'))
    expect(meta.infoHashHex).to.not.equal(sha1(bencode(bdecode(unsorted))).toString('hex'))
    expect(meta.info.equals(unsorted)).to.equal(true)
  })

  it('gives each file of a multi-file torrent its offset in the content', () => {
    const info = bencode({
      name: 'album',
      'piece length': 16_384,
      pieces: Buffer.alloc(2 * 20),
      files: [
        {length: 10_000, path: ['cd1', 'a.flac']},
        {length: 0, path: ['empty']},
        {length: 20_000, path: ['cd2', 'b.flac']},
      ],
    })
    const meta = parseInfo(info)
    expect(meta.multiFile).to.equal(true)
    expect(meta.length).to.equal(30_000)
    expect(meta.files).to.deep.equal([
      {path: ['cd1', 'a.flac'], length: 10_000, offset: 0},
      {path: ['empty'], length: 0, offset: 10_000},
      {path: ['cd2', 'b.flac'], length: 20_000, offset: 10_000},
    ])
    expect(meta.announce).to.deep.equal([])
    expect(meta.infoHash.equals(sha1(info))).to.equal(true)
  })

  it('flattens announce and the announce-list tiers in order, without duplicates', () => {
    const info = singleInfo()
    const torrent = bencode({
      announce: 'http://a/announce',
      'announce-list': [['http://a/announce', 'http://b/announce'], ['udp://c:80']],
      info: bdecode(info),
    })
    expect(parseTorrent(torrent).announce).to.deep.equal(['http://a/announce', 'http://b/announce', 'udp://c:80'])
  })

  const good = bdecode(singleInfo()) as Record<string, unknown>
  const withInfo = (info: Record<string, unknown>): Buffer => bencode({announce: 'http://x/announce', info})
  const malformed: Array<[string, Buffer, RegExp]> = [
    ['empty input', Buffer.alloc(0), /not valid bencode/],
    ['a list, not a dictionary', Buffer.from('le'), /not a dictionary/],
    ['trailing bytes', Buffer.concat([withInfo(good), Buffer.from('x')]), /trailing/],
    ['a truncated string', Buffer.from('d4:info5:abce'), /runs past the end/],
    ['an unterminated dictionary', Buffer.from('d4:infod'), /unterminated|end of data/],
    ['a leading-zero integer', Buffer.from('d1:ai01ee'), /bad integer/],
    ['negative zero', Buffer.from('d1:ai-0ee'), /bad integer/],
    ['an integer key', Buffer.from('di1e1:ae'), /key is not a string/],
    ['deep nesting', Buffer.from('d1:a' + 'l'.repeat(100_000) + 'e'.repeat(100_000) + 'e'), /too deep/],
    ['no info', bencode({announce: 'http://x/'}), /no info dictionary/],
    ['info not a dictionary', bencode({info: 5}), /info is not a dictionary/],
    ['no name', withInfo({...good, name: undefined}), /info.name is not a string/],
    ['a name with a slash', withInfo({...good, name: 'a/b'}), /not a safe file name/],
    ['a name of ..', withInfo({...good, name: '..'}), /not a safe file name/],
    ['piece length 0', withInfo({...good, 'piece length': 0}), /piece length is 0/],
    ['a negative length', withInfo({...good, length: -1}), /non-negative integer/],
    ['pieces not a multiple of 20', withInfo({...good, pieces: Buffer.alloc(59)}), /multiple of 20/],
    ['too few piece hashes', withInfo({...good, pieces: Buffer.alloc(40)}), /expected 3/],
    ['too many piece hashes', withInfo({...good, pieces: Buffer.alloc(80)}), /expected 3/],
    ['both length and files', withInfo({...good, files: [{length: 40_000, path: ['a']}]}), /both length and files/],
    ['an empty files list', withInfo({...good, length: undefined, files: []}), /non-empty list/],
    ['a path climbing out', withInfo({...good, length: undefined, files: [{length: 40_000, path: ['..', 'etc', 'passwd']}]}), /not a safe file name/],
    ['an empty path', withInfo({...good, length: undefined, files: [{length: 40_000, path: []}]}), /non-empty list/],
    ['a file without length', withInfo({...good, length: undefined, files: [{path: ['a']}]}), /files\[0\]\.length/],
  ]
  for (const [what, data, pattern] of malformed) {
    it(`rejects ${what} with a TorrentFormatError`, () => expectFormatError(() => parseTorrent(data), pattern))
  }

  it('never throws anything but TorrentFormatError on 3,000 seeded mutations of a valid torrent', () => {
    const torrent = encodeTorrent(singleInfo(), ['http://127.0.0.1:1/announce'])
    const random = prngStream('metainfo-fuzz')
    let accepted = 0
    for (let round = 0; round < 3000; round++) {
      const bytes = Buffer.from(torrent)
      const noise = random(8)
      const edits = 1 + (noise[0] % 4)
      for (let e = 0; e < edits; e++) bytes[noise.readUInt16BE(1 + e) % bytes.length] = noise[5 + (e % 3)]
      const cut = noise[4] % 5 === 0 ? bytes.subarray(0, noise.readUInt16BE(2) % bytes.length) : bytes
      try {
        const meta = parseTorrent(cut)
        expect(meta.infoHash).to.have.length(20)
        accepted++
      } catch (error) {
        if (!(error instanceof TorrentFormatError)) throw error
      }
    }
    // Edits inside the piece hashes or the tracker URL keep the torrent valid.
    expect(accepted).to.be.greaterThan(0).and.lessThan(3000)
  })

  it('round-trips magnets, hex and base32, and rejects malformed ones', () => {
    const meta = parseTorrent(encodeTorrent(singleInfo(), ['http://127.0.0.1:6969/announce', 'udp://t:1']))
    const uri = magnetUri(meta)
    expect(uri).to.match(/^magnet:\?xt=urn:btih:[0-9a-f]{40}&dn=movie\.bin&tr=http%3A%2F%2F127\.0\.0\.1%3A6969%2Fannounce&tr=udp%3A%2F%2Ft%3A1$/)
    const parsed = parseMagnet(uri)
    expect(parsed.infoHash.equals(meta.infoHash)).to.equal(true)
    expect(parsed).to.deep.include({infoHashHex: meta.infoHashHex, name: 'movie.bin', trackers: ['http://127.0.0.1:6969/announce', 'udp://t:1']})

    const base32 = 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U' // RFC 4648 base32 of "abcdefghijklmnopqrst"
    expect(parseMagnet(`magnet:?xt=urn:btih:${base32}`).infoHash.toString('latin1')).to.equal('abcdefghijklmnopqrst')
    expect(parseMagnet(`magnet:?xt=urn:btih:${meta.infoHashHex.toUpperCase()}`).infoHashHex).to.equal(meta.infoHashHex)
    expect(parseMagnet(`magnet:?xt=urn:btih:${meta.infoHashHex}`)).to.not.have.property('name')

    expectFormatError(() => parseMagnet('http://example/'), /does not start with/)
    expectFormatError(() => parseMagnet('magnet:?dn=x'), /no xt/)
    expectFormatError(() => parseMagnet('magnet:?xt=urn:btih:1234'), /neither 40 hex nor 32 base32/)
    expectFormatError(() => parseMagnet('magnet:?xt=urn:btih:' + '1'.repeat(32)), /not base32/)
  })
})
