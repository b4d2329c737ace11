/**
 * The router's own LevelDB: membership, the clock's high-water mark, hints
 * (writes a down replica missed) and the buffer (writes no replica could
 * take). Layout:
 *   'm' + server (2 bytes)            → JSON {host, port}
 *   'c'                               → clock high-water mark (8 bytes)
 *   'h' + server (2 bytes) + key      → header + value   (one hint per server and key: the newest)
 *   'b' + key                         → header + value   (one buffered write per key: the newest)
 * Hints and buffered writes are written synchronously (group-committed)
 * before the write they stand for is acknowledged. An in-memory index of
 * their versions lets reads consider them without touching the disk.
 */
import {mkdir} from 'node:fs/promises'

import {ClassicLevel} from './level.js'

import {HEADER_BYTES, decodeHeader, encodeHeader, type Versioned} from './versions.js'

export interface KvRecord extends Versioned {
  value: Buffer | null
}

export interface PendingRecord extends KvRecord {
  key: Buffer
}

export type PendingSource = {kind: 'buffer'} | {kind: 'hint'; server: number}

type Op = {type: 'put'; key: Buffer; value: Buffer} | {type: 'del'; key: Buffer}

function server2(n: number): Buffer {
  const out = Buffer.allocUnsafe(2)
  out.writeUInt16BE(n)
  return out
}

function hintKey(server: number, key: Buffer): Buffer {
  return Buffer.concat([Buffer.from('h'), server2(server), key])
}

function bufferKey(key: Buffer): Buffer {
  return Buffer.concat([Buffer.from('b'), key])
}

function encodeRecord(record: KvRecord): Buffer {
  const header = encodeHeader(record.version, record.tomb)
  return record.tomb || !record.value ? header : Buffer.concat([header, record.value])
}

function decodeRecord(data: Buffer): KvRecord {
  const header = decodeHeader(data)
  return {...header, value: header.tomb ? null : data.subarray(HEADER_BYTES)}
}

export class RouterStore {
  private readonly db: ClassicLevel<Buffer, Buffer>
  private readonly dir: string
  private readonly hints = new Map<string, Map<number, Versioned>>()
  private readonly hintCounts = new Map<number, number>()
  private readonly buffered = new Map<string, Versioned>()
  private queue: Array<{ops: Op[]; sync: boolean; resolve: () => void; reject: (error: Error) => void}> = []
  private chain: Promise<void> = Promise.resolve()
  private scheduled = false

  constructor(dir: string) {
    this.dir = dir
    this.db = new ClassicLevel<Buffer, Buffer>(dir, {keyEncoding: 'buffer', valueEncoding: 'buffer'})
  }

  async open(): Promise<void> {
    await mkdir(this.dir, {recursive: true})
    await this.db.open()
    for await (const [key, value] of this.db.iterator({gte: Buffer.from('b'), lt: Buffer.from('c')})) {
      this.buffered.set(key.subarray(1).toString('latin1'), decodeHeader(value))
    }
    for await (const [key, value] of this.db.iterator({gte: Buffer.from('h'), lt: Buffer.from('i')})) {
      this.indexHint(key.readUInt16BE(1), key.subarray(3).toString('latin1'), decodeHeader(value))
    }
  }

  async close(): Promise<void> {
    await this.chain
    await this.db.close()
  }

  // ---- membership and clock ------------------------------------------------

  async loadMembers(): Promise<Map<number, {host: string; port: number}>> {
    const out = new Map<number, {host: string; port: number}>()
    for await (const [key, value] of this.db.iterator({gte: Buffer.from('m'), lt: Buffer.from('n')})) {
      try {
        out.set(key.readUInt16BE(1), JSON.parse(value.toString()) as {host: string; port: number})
      } catch {
        // a damaged entry is relearnt from the next heartbeat
      }
    }
    return out
  }

  saveMember(number: number, address: {host: string; port: number}): Promise<void> {
    return this.write([{type: 'put', key: Buffer.concat([Buffer.from('m'), server2(number)]), value: Buffer.from(JSON.stringify(address))}], true)
  }

  async loadClock(): Promise<number> {
    const data = await this.db.get(Buffer.from('c'))
    return data && data.length === 8 ? Number(data.readBigUInt64BE()) : 0
  }

  saveClock(version: number): Promise<void> {
    const data = Buffer.allocUnsafe(8)
    data.writeBigUInt64BE(BigInt(version))
    return this.write([{type: 'put', key: Buffer.from('c'), value: data}], false)
  }

  // ---- hints -------------------------------------------------------------

  get hintsPending(): number {
    let total = 0
    for (const count of this.hintCounts.values()) total += count
    return total
  }

  hintsFor(server: number): number {
    return this.hintCounts.get(server) ?? 0
  }

  /** Keeps a write for a down server (unless a newer hint is already kept). Durable when it resolves. */
  async addHint(server: number, key: Buffer, record: KvRecord): Promise<void> {
    const id = key.toString('latin1')
    const held = this.hints.get(id)?.get(server)
    if (held && held.version >= record.version) return
    this.indexHint(server, id, record)
    await this.write([{type: 'put', key: hintKey(server, key), value: encodeRecord(record)}], true)
  }

  /** Drops a hint once delivered, unless a newer one replaced it meanwhile. */
  async removeHint(server: number, key: Buffer, version: number): Promise<void> {
    const id = key.toString('latin1')
    const perServer = this.hints.get(id)
    if (perServer?.get(server)?.version !== version) return
    perServer.delete(server)
    if (perServer.size === 0) this.hints.delete(id)
    this.hintCounts.set(server, (this.hintCounts.get(server) ?? 1) - 1)
    await this.write([{type: 'del', key: hintKey(server, key)}], false)
  }

  /** The hints held for one server, oldest key order, in pages. */
  async *hintRecords(server: number, pageSize = 256): AsyncGenerator<PendingRecord[]> {
    const prefix = Buffer.concat([Buffer.from('h'), server2(server)])
    const end = Buffer.concat([Buffer.from('h'), server2(server + 1)])
    let page: PendingRecord[] = []
    for await (const [key, value] of this.db.iterator({gte: prefix, lt: end})) {
      page.push({key: key.subarray(3), ...decodeRecord(value)})
      if (page.length >= pageSize) {
        yield page
        page = []
      }
    }
    if (page.length > 0) yield page
  }

  // ---- buffer --------------------------------------------------------------

  get bufferedWrites(): number {
    return this.buffered.size
  }

  async addBuffered(key: Buffer, record: KvRecord): Promise<void> {
    const id = key.toString('latin1')
    const held = this.buffered.get(id)
    if (held && held.version >= record.version) return
    this.buffered.set(id, {version: record.version, tomb: record.tomb})
    await this.write([{type: 'put', key: bufferKey(key), value: encodeRecord(record)}], true)
  }

  async removeBuffered(key: Buffer, version: number): Promise<void> {
    const id = key.toString('latin1')
    if (this.buffered.get(id)?.version !== version) return
    this.buffered.delete(id)
    await this.write([{type: 'del', key: bufferKey(key)}], false)
  }

  async *bufferedRecords(pageSize = 256): AsyncGenerator<PendingRecord[]> {
    let page: PendingRecord[] = []
    for await (const [key, value] of this.db.iterator({gte: Buffer.from('b'), lt: Buffer.from('c')})) {
      page.push({key: key.subarray(1), ...decodeRecord(value)})
      if (page.length >= pageSize) {
        yield page
        page = []
      }
    }
    if (page.length > 0) yield page
  }

  // ---- reads -----------------------------------------------------------------

  /** The newest version of a key among the hints and the buffer, without reading its value. */
  newestPending(key: Buffer): (Versioned & {source: PendingSource}) | null {
    if (this.buffered.size === 0 && this.hints.size === 0) return null
    const id = key.toString('latin1')
    let best: (Versioned & {source: PendingSource}) | null = null
    const buffered = this.buffered.get(id)
    if (buffered) best = {...buffered, source: {kind: 'buffer'}}
    for (const [server, entry] of this.hints.get(id) ?? []) {
      if (!best || entry.version > best.version) best = {...entry, source: {kind: 'hint', server}}
    }
    return best
  }

  /** Every pending key (hints and buffer) with its newest version. */
  pendingKeys(): Map<string, Versioned> {
    const out = new Map<string, Versioned>(this.buffered)
    for (const [id, perServer] of this.hints) {
      for (const entry of perServer.values()) {
        const held = out.get(id)
        if (!held || entry.version > held.version) out.set(id, entry)
      }
    }
    return out
  }

  async readPending(key: Buffer, source: PendingSource): Promise<KvRecord | null> {
    const data = await this.db.get(source.kind === 'buffer' ? bufferKey(key) : hintKey(source.server, key))
    return data ? decodeRecord(data) : null
  }

  // ---- internals -----------------------------------------------------------

  private indexHint(server: number, id: string, entry: Versioned): void {
    let perServer = this.hints.get(id)
    if (!perServer) this.hints.set(id, (perServer = new Map()))
    if (!perServer.has(server)) this.hintCounts.set(server, (this.hintCounts.get(server) ?? 0) + 1)
    perServer.set(server, {version: entry.version, tomb: entry.tomb})
  }

  /** Group commit: writes queued while a batch is on its way to disk share the next batch. */
  private write(ops: Op[], sync: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ops, sync, resolve, reject})
      if (this.scheduled) return
      this.scheduled = true
      this.chain = this.chain.then(async () => {
        this.scheduled = false
        const jobs = this.queue
        this.queue = []
        try {
          await this.db.batch(
            jobs.flatMap((job) => job.ops),
            {sync: jobs.some((job) => job.sync)},
          )
          for (const job of jobs) job.resolve()
        } catch (error) {
          for (const job of jobs) job.reject(error as Error)
        }
      })
    })
  }
}
