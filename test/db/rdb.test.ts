// The RDB format, LZF and CRC-64, checked against a real redis-server: it
// loads the files we write, and we read the files it writes.
import {expect} from 'chai'
import fs from 'node:fs/promises'
import path from 'node:path'

import {Backlog, Crc64, RdbReader, lzfDecompress, rdbSize, writeRdb, type RdbEntry, type Snapshot} from '../../src/db/index.js'
import {client, ensureRedis, removeTempDirs, startRedis, stop, tempDir} from '../helpers/db.js'

function readAll(file: Buffer, chunk: number): {entries: RdbEntry[]; skipped: number; rest: Buffer} {
  const reader = new RdbReader()
  const entries: RdbEntry[] = []
  let rest = Buffer.alloc(0)
  for (let i = 0; i < file.length; i += chunk) {
    const out = reader.feed(file.subarray(i, i + chunk))
    entries.push(...out.entries)
    if (reader.done) rest = Buffer.concat([rest, out.rest])
  }
  expect(reader.done).to.equal(true)
  return {entries, skipped: reader.skipped, rest}
}

function snapshotOf(dbs: Record<number, Array<[string | Buffer, string | Buffer]>>): Snapshot {
  return Array.from({length: 16}, (_, db) => (dbs[db] ?? []).map(([k, v]) => [Buffer.from(k), Buffer.from(v)] as const))
}

describe('db RDB, LZF, CRC-64 and backlog', function () {
  this.timeout(30_000)
  after(removeTempDirs)

  it('CRC-64/Jones of "123456789" is Redis\'s test vector', () => {
    expect(new Crc64().update(Buffer.from('123456789')).value).to.equal(0xe9c6d914c4b8d9can)
  })

  it('LZF: literals, back references, overlapping copies; corrupt input is an error', () => {
    expect(lzfDecompress(Buffer.from([0x02, 0x61, 0x62, 0x63, 0x20, 0x02]), 6).toString()).to.equal('abcabc')
    expect(lzfDecompress(Buffer.from([0x00, 0x61, 0xe0, 0x01, 0x00]), 11).toString()).to.equal('a'.repeat(11))
    expect(() => lzfDecompress(Buffer.from([0x00, 0x61, 0x20, 0x05]), 4)).to.throw(/back reference/)
    expect(() => lzfDecompress(Buffer.from([0x05, 0x61]), 6)).to.throw(/overrun/)
    expect(() => lzfDecompress(Buffer.from([0x02, 0x61, 0x62, 0x63]), 4)).to.throw(/expected 4/)
  })

  it('reads back what it writes, in chunks of any size, and rejects a bad checksum', () => {
    const big = Buffer.alloc(200_000, 7)
    const snapshot = snapshotOf({0: [['a', '1'], [Buffer.from([0, 255]), Buffer.from([1, 0, 2])], ['big', big]], 9: [['nine', 'x'.repeat(70)]]})
    const file = Buffer.concat([...writeRdb(snapshot, 1024)])
    expect(file.length).to.equal(rdbSize(snapshot))
    for (const chunk of [1, 13, 4096, file.length]) {
      const {entries, skipped} = readAll(file, chunk)
      expect(skipped).to.equal(0)
      expect(entries.map((e) => [e.db, e.key.toString('hex'), e.value.length])).to.deep.equal([
        [0, Buffer.from('a').toString('hex'), 1],
        [0, '00ff', 3],
        [0, Buffer.from('big').toString('hex'), 200_000],
        [9, Buffer.from('nine').toString('hex'), 70],
      ])
    }
    const bad = Buffer.from(file)
    bad[20] ^= 1
    expect(() => readAll(bad, 4096)).to.throw(/checksum|RDB/)
    const {rest} = readAll(Buffer.concat([file, Buffer.from('+tail')]), 100)
    expect(rest.toString()).to.equal('+tail')
  })

  it('redis-server loads the RDB we write', async () => {
    ensureRedis()
    const dir = await tempDir()
    const big = Buffer.alloc(100 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = (i * 131) % 256
    const snapshot = snapshotOf({0: [['plain', 'value'], ['big', big], [Buffer.from([0xc3, 0x28, 0]), Buffer.from([0, 0xff])]], 7: [['seven', '7']]})
    await fs.writeFile(path.join(dir, 'ours.rdb'), Buffer.concat([...writeRdb(snapshot)]))
    const redis = await startRedis(dir, ['--dbfilename', 'ours.rdb'])
    const r = client(redis.port)
    try {
      expect(await r.get('plain')).to.equal('value')
      expect((await r.getBuffer('big'))!.equals(big)).to.equal(true)
      expect((await r.getBuffer(Buffer.from([0xc3, 0x28, 0])))!.equals(Buffer.from([0, 0xff]))).to.equal(true)
      expect(await r.dbsize()).to.equal(3)
      await r.select(7)
      expect(await r.get('seven')).to.equal('7')
    } finally {
      r.disconnect()
      await stop(redis)
    }
  })

  it('reads the RDB redis-server writes (LZF, integers, expiries, other types counted)', async () => {
    ensureRedis()
    const dir = await tempDir()
    const redis = await startRedis(dir, ['--dbfilename', 'theirs.rdb'])
    const r = client(redis.port)
    const long = 'the quick brown fox '.repeat(500)
    try {
      await r.set('long', long)
      await r.set('small-int', '42')
      await r.set('big-int', '1234567890')
      await r.set('ttl', 'x'.repeat(40), 'EX', 1000)
      await r.rpush('list', 'a', 'b')
      await r.sadd('set', '1', '2')
      await r.hset('hash', 'f', 'v')
      await r.zadd('zset', 1, 'm')
      await r.select(3)
      await r.set('three', 'drei')
      await r.save()
    } finally {
      r.disconnect()
      await stop(redis)
    }
    const file = await fs.readFile(path.join(dir, 'theirs.rdb'))
    for (const chunk of [1, 7, 65536]) {
      const {entries, skipped} = readAll(file, chunk)
      const got = Object.fromEntries(entries.map((e) => [`${e.db}/${e.key}`, e.value.toString()]))
      expect(got).to.deep.equal({'0/long': long, '0/small-int': '42', '0/big-int': '1234567890', '0/ttl': 'x'.repeat(40), '3/three': 'drei'})
      expect(skipped).to.equal(4)
    }
  })

  it('the backlog keeps the last bytes, across wrap-around', () => {
    const backlog = new Backlog(10)
    backlog.append(Buffer.from('abcdef'))
    expect(backlog.since(1)!.toString()).to.equal('abcdef')
    expect(backlog.since(4)!.toString()).to.equal('def')
    expect(backlog.since(7)!.toString()).to.equal('')
    expect(backlog.since(8)).to.equal(null)
    backlog.append(Buffer.from('ghijkl'))
    expect(backlog.offset).to.equal(12)
    expect(backlog.firstByteOffset).to.equal(3)
    expect(backlog.since(2)).to.equal(null)
    expect(backlog.since(3)!.toString()).to.equal('cdefghijkl')
    backlog.append(Buffer.from('0123456789XY'))
    expect(backlog.since(15)!.toString()).to.equal('23456789XY')
  })
})
