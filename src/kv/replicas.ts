/**
 * The router's data path: versioned writes to every replica of a key (hints
 * for the down ones, the buffer when all are down), reads from the live
 * replicas with read repair, key scans, and replay of hints and the buffer.
 */
import {RespReplyError, type RespValue} from './client.js'
import {encodeArgs} from './resp.js'
import type {KvRecord, PendingSource, RouterStore} from './hints.js'
import type {Membership} from './membership.js'
import type {Ring} from './ring.js'
import {newer, type HybridClock, type Versioned} from './versions.js'

/** The hot commands' names, encoded once. */
const XSET = Buffer.from('XSET')
const XGET = Buffer.from('XGET')
const XVER = Buffer.from('XVER')
const EMPTY = Buffer.alloc(0)

/** No replica of the key is up (and the router holds no pending write for it). */
export class NoServerError extends Error {
  constructor() {
    super('NOSERVER no replica of this key is up')
    this.name = 'NoServerError'
  }
}

export interface ReadResult extends Versioned {
  value: Buffer | null
}

interface Answer {
  server: number
  entry: Versioned | null
  value?: Buffer | null
}

export class Replicas {
  private readonly replaying = new Set<number | 'buffer'>()

  constructor(
    private readonly ring: Ring,
    private readonly members: Membership,
    private readonly store: RouterStore,
    private readonly clock: HybridClock,
  ) {}

  /** Writes a version to every replica of the key; resolves once it is stored, hinted or buffered. */
  async write(key: Buffer, record: KvRecord): Promise<void> {
    const prefs = this.ring.preferenceFor(key)
    if (!prefs.some((server) => this.members.isUp(server))) {
      await this.store.addBuffered(key, record)
      return
    }
    await Promise.all(prefs.map((server) => this.writeTo(server, key, record)))
  }

  /**
   * write() by callback, with the same outcome: the router's SET path, with
   * one encoded command for both replicas and no promise unless a hint or
   * the buffer is needed. `done` gets the first failure (a replica's error
   * reply, or a failure to keep a hint), or null once every replica stored
   * the write or has a hint for it.
   */
  writeCb(key: Buffer, record: KvRecord, done: (error: Error | null) => void): void {
    const prefs = this.ring.preferenceFor(key)
    let anyUp = false
    for (const server of prefs) if (this.members.isUp(server)) anyUp = true
    if (!anyUp) {
      this.store.addBuffered(key, record).then(
        () => done(null),
        (error: Error) => done(error),
      )
      return
    }
    const command = encodeArgs([XSET, key, record.version, record.tomb ? 1 : 0, record.value ?? EMPTY])
    let left = prefs.length
    let finished = false
    const one = (error: Error | null): void => {
      if (finished) return
      if (error) {
        finished = true
        done(error)
      } else if (--left === 0) {
        finished = true
        done(null)
      }
    }
    const hint = (server: number): void => {
      this.store.addHint(server, key, record).then(
        () => one(null),
        (error: Error) => one(error),
      )
    }
    for (const server of prefs) {
      if (!this.members.isUp(server)) {
        hint(server)
        continue
      }
      this.members.send(server, command, (error) => {
        if (!error) one(null)
        else if (error instanceof RespReplyError) one(error)
        else hint(server)
      })
    }
  }

  /**
   * read() by callback, with the same outcome: the router's GET path. The
   * rare cases (a pending hint or buffered write for the key, the newest
   * version on a replica that sent only its version) take read()'s path.
   */
  readCb(key: Buffer, done: (error: Error | null, result: ReadResult | null) => void): void {
    const viaRead = (): void => {
      this.read(key).then(
        (result) => done(null, result),
        (error: Error) => done(error, null),
      )
    }
    if (this.store.newestPending(key)) return viaRead()
    const live: number[] = []
    for (const server of this.ring.preferenceFor(key)) if (this.members.isUp(server)) live.push(server)
    if (live.length === 0) return done(new NoServerError(), null)
    const answers: Array<Answer | undefined> = new Array(live.length)
    let left = live.length
    const finish = (): void => {
      let best: Answer | null = null
      let any = false
      for (const answer of answers) {
        if (!answer) continue
        any = true
        if (newer(answer.entry, best?.entry)) best = answer
      }
      if (!any) return done(new NoServerError(), null)
      if (!best?.entry) return done(null, null)
      if (!best.entry.tomb && best.value === undefined) return viaRead()
      const result: ReadResult = {version: best.entry.version, tomb: best.entry.tomb, value: best.entry.tomb ? null : (best.value ?? null)}
      this.clock.observe(result.version)
      for (const answer of answers) {
        if (answer && newer(result, answer.entry) && (result.tomb || result.value !== null)) {
          void this.members.call(answer.server, 'XSET', key, result.version, result.tomb ? 1 : 0, result.value ?? '').catch(() => undefined)
        }
      }
      done(null, result)
    }
    const xget = encodeArgs([XGET, key])
    const xver = live.length > 1 ? encodeArgs([XVER, key]) : xget
    live.forEach((server, i) => {
      this.members.send(server, i === 0 ? xget : xver, (error, reply) => {
        if (!error) {
          const entry = parseVersioned(reply)
          if (i > 0) answers[i] = {server, entry}
          else {
            const value = entry && !entry.tomb ? (reply as RespValue[])[2] : null
            answers[i] = {server, entry, value: entry ? (entry.tomb ? null : Buffer.isBuffer(value) ? value : Buffer.alloc(0)) : null}
          }
        }
        if (--left === 0) finish()
      })
    })
  }

  /** Stores on one replica, or keeps a hint for it. Resolves true if stored. */
  private async writeTo(server: number, key: Buffer, record: KvRecord): Promise<boolean> {
    if (this.members.isUp(server)) {
      try {
        await this.members.call(server, 'XSET', key, record.version, record.tomb ? 1 : 0, record.value ?? '')
        return true
      } catch (error) {
        if (error instanceof RespReplyError) throw error
      }
    }
    await this.store.addHint(server, key, record)
    return false
  }

  /** The newest version of a key, or null if no replica has it. Repairs stale replicas. */
  async read(key: Buffer): Promise<ReadResult | null> {
    const prefs = this.ring.preferenceFor(key)
    const live = prefs.filter((server) => this.members.isUp(server))
    const pending = this.store.newestPending(key)
    if (live.length === 0) {
      if (pending) return this.fromPending(key, pending.source)
      throw new NoServerError()
    }
    const settled = await Promise.allSettled(live.map((server, i) => this.ask(server, key, i === 0)))
    const answers = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
    if (answers.length === 0) {
      if (pending) return this.fromPending(key, pending.source)
      throw new NoServerError()
    }
    let best: Answer | null = null
    for (const answer of answers) if (newer(answer.entry, best?.entry)) best = answer
    let result: ReadResult | null = null
    if (pending && newer(pending, best?.entry)) result = await this.fromPending(key, pending.source)
    else if (best?.entry) result = {...best.entry, value: best.entry.tomb ? null : (best.value ?? (await this.fetch(best.server, key))?.value ?? null)}
    if (!result) return null
    this.clock.observe(result.version)
    for (const answer of answers) {
      if (newer(result, answer.entry) && (result.tomb || result.value !== null)) {
        void this.members.call(answer.server, 'XSET', key, result.version, result.tomb ? 1 : 0, result.value ?? '').catch(() => undefined)
      }
    }
    return result
  }

  /**
   * The newest version of a key (null if no replica has it), asking only for
   * versions: what a compare-and-set needs, without moving the value. No
   * read repair; the write that follows supersedes every copy anyway.
   */
  async newestVersion(key: Buffer): Promise<Versioned | null> {
    const live = this.ring.preferenceFor(key).filter((server) => this.members.isUp(server))
    const pending = this.store.newestPending(key)
    const settled = await Promise.allSettled(live.map((server) => this.ask(server, key, false)))
    const answers = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
    if (answers.length === 0 && !pending) throw new NoServerError()
    let best: Versioned | null = pending ? {version: pending.version, tomb: pending.tomb} : null
    for (const answer of answers) if (newer(answer.entry, best)) best = answer.entry
    if (best) this.clock.observe(best.version)
    return best
  }

  /** XGET (with the value) or XVER (version only) from one replica. */
  private async ask(server: number, key: Buffer, withValue: boolean): Promise<Answer> {
    if (!withValue) {
      const reply = await this.members.call(server, 'XVER', key)
      return {server, entry: parseVersioned(reply)}
    }
    const record = await this.fetch(server, key)
    return {server, entry: record, value: record?.value ?? null}
  }

  async fetch(server: number, key: Buffer): Promise<ReadResult | null> {
    const reply = await this.members.call(server, 'XGET', key)
    const entry = parseVersioned(reply)
    if (!entry) return null
    const value = (reply as RespValue[])[2]
    return {...entry, value: entry.tomb ? null : Buffer.isBuffer(value) ? value : Buffer.alloc(0)}
  }

  private async fromPending(key: Buffer, source: PendingSource): Promise<ReadResult | null> {
    const record = await this.store.readPending(key, source)
    return record ? {...record, value: record.tomb ? null : (record.value ?? Buffer.alloc(0))} : null
  }

  /** Every key of a database matching a glob, newest version per key, from the live servers and pending writes. */
  async scan(prefix: Buffer, pattern: string, match: (rest: Buffer) => boolean): Promise<Map<string, Versioned>> {
    const merged = new Map<string, Versioned>()
    const servers = this.members.members.filter((member) => member.state === 'up').map((member) => member.number)
    const replies = await Promise.allSettled(servers.map((server) => this.members.call(server, 'XSCAN', prefix, pattern)))
    for (const reply of replies) {
      if (reply.status !== 'fulfilled') continue
      for (const entry of parseHeaderList(reply.value)) {
        const id = entry.key.toString('latin1')
        if (newer(entry, merged.get(id))) merged.set(id, entry)
      }
    }
    const prefixId = prefix.toString('latin1')
    for (const [id, entry] of this.store.pendingKeys()) {
      if (!id.startsWith(prefixId) || !match(Buffer.from(id.slice(prefixId.length), 'latin1'))) continue
      if (newer(entry, merged.get(id))) merged.set(id, entry)
    }
    return merged
  }

  /** Delivers a server's hints. Stops at the first failure (the server went down again). */
  async replayHints(server: number): Promise<void> {
    if (this.replaying.has(server) || this.store.hintsFor(server) === 0) return
    this.replaying.add(server)
    try {
      for await (const page of this.store.hintRecords(server)) {
        if (!this.members.isUp(server)) return
        await Promise.all(
          page.map(async (record) => {
            await this.members.call(server, 'XSET', record.key, record.version, record.tomb ? 1 : 0, record.value ?? '')
            await this.store.removeHint(server, record.key, record.version)
          }),
        )
      }
    } catch {
      // the server went down again; the hints stay for its next return
    } finally {
      this.replaying.delete(server)
    }
  }

  /** Moves buffered writes to whichever of their replicas are up (hinting the rest). */
  async replayBuffer(): Promise<void> {
    if (this.replaying.has('buffer') || this.store.bufferedWrites === 0) return
    this.replaying.add('buffer')
    try {
      for await (const page of this.store.bufferedRecords()) {
        await Promise.all(
          page.map(async (record) => {
            if (!this.ring.preferenceFor(record.key).some((server) => this.members.isUp(server))) return
            await this.write(record.key, record)
            await this.store.removeBuffered(record.key, record.version)
          }),
        )
      }
    } catch {
      // retried on the next tick
    } finally {
      this.replaying.delete('buffer')
    }
  }
}

/** `[version, tomb, ...]` or nil → Versioned | null. */
export function parseVersioned(reply: RespValue): Versioned | null {
  if (!Array.isArray(reply) || reply.length < 2) return null
  return {version: Number(reply[0]), tomb: Number(reply[1]) === 1}
}

/** Flat `key, version, tomb, …` → entries. */
export function parseHeaderList(reply: RespValue): Array<Versioned & {key: Buffer}> {
  const out: Array<Versioned & {key: Buffer}> = []
  if (!Array.isArray(reply)) return out
  for (let i = 0; i + 2 < reply.length; i += 3) {
    const key = reply[i]
    if (Buffer.isBuffer(key)) out.push({key, version: Number(reply[i + 1]), tomb: Number(reply[i + 2]) === 1})
  }
  return out
}
