/**
 * The `records` database of a site server: documents with revision trees in
 * LevelDB, a per-database update sequence, and `_local` documents.
 *
 * Keys (utf8):
 *   'd\0' + id               → {t: revision tree, s: seq}
 *   'b\0' + id + '\0' + rev  → body of a leaf revision (JSON, no `_` fields)
 *   's\0' + seq (16 digits)  → id, the document's latest change
 *   'l\0' + id               → a `_local` document
 *   'm\0seq', 'm\0uuid'      → the update sequence and this database's identity
 * LevelDB is opened as the KV layer opens it (src/kv/storage.ts): no
 * compression, larger write buffer. Writes go through one queue, each request
 * one atomic batch; a batch is in LevelDB's log (write(2)) before it is
 * acknowledged, so a SIGKILL loses nothing acknowledged, and as there, the log
 * is fsync'd once a second when something was written (and on close), which
 * bounds what an OS crash can take.
 */
import {randomUUID} from 'node:crypto'

import {ClassicLevel} from '../kv/level.js'

import {badRequest, conflict, CouchError, notFound} from './errors.js'
import {conflicts, leaves, leavesFrom, mergePath, newRev, parseRev, pathOf, revisions, type RevTree, winner} from './revs.js'

export type Body = Record<string, unknown>
export type Doc = Body & {_id: string; _rev?: string; _deleted?: boolean}

interface Meta {
  t: RevTree
  s: number
}

export interface ChangeRow {
  seq: number
  id: string
  changes: Array<{rev: string}>
  deleted?: true
  doc?: Doc
}

export interface WriteResult {
  ok?: true
  id: string
  rev?: string
  error?: string
  reason?: string
}

const SPECIAL = new Set(['_id', '_rev', '_deleted', '_revisions', '_conflicts', '_deleted_conflicts', '_revs_info', '_local_seq', '_attachments'])

const dKey = (id: string): string => `d\0${id}`
const bKey = (id: string, rev: string): string => `b\0${id}\0${rev}`
const sKey = (seq: number): string => `s\0${String(seq).padStart(16, '0')}`
const lKey = (id: string): string => `l\0${id}`

/** Checks a document's shape; returns its id and its body without `_` fields. */
export function splitDoc(doc: unknown, idRequired: boolean): {id: string | undefined; body: Body} {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badRequest('Document must be a JSON object')
  const d = doc as Record<string, unknown>
  const body: Body = {}
  for (const [key, value] of Object.entries(d)) {
    if (!key.startsWith('_')) body[key] = value
    else if (!SPECIAL.has(key)) throw new CouchError(400, 'doc_validation', `Bad special document member: ${key}`)
  }
  if (d._attachments !== undefined) throw new CouchError(400, 'bad_request', 'Attachments are not supported')
  const id = d._id
  if (id === undefined) {
    if (idRequired) throw badRequest('Document id must be a string')
    return {id: undefined, body}
  }
  checkId(id)
  return {id: id as string, body}
}

export function checkId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) throw new CouchError(400, 'illegal_docid', 'Document id must be a non-empty string')
  if (id.length > 512 || id.includes('\0')) throw new CouchError(400, 'illegal_docid', 'Document id is too long or holds a NUL')
  if (id.startsWith('_')) throw new CouchError(400, 'illegal_docid', 'Only reserved document ids may start with underscore.')
}

export class RecordStore {
  readonly db: ClassicLevel<string, string>
  private chain: Promise<unknown> = Promise.resolve()
  private seq = 0
  private uuidValue = ''
  private live = 0
  private dead = 0
  private waiters = new Set<() => void>()
  private dirty = false
  private syncTimer?: NodeJS.Timeout

  constructor(dir: string) {
    this.db = new ClassicLevel<string, string>(dir, {
      keyEncoding: 'utf8',
      valueEncoding: 'utf8',
      writeBufferSize: 32 * 1024 * 1024,
      compression: false,
    })
  }

  async open(): Promise<void> {
    await this.db.open()
    this.seq = Number((await this.db.get('m\0seq')) ?? 0)
    let uuid = await this.db.get('m\0uuid')
    if (!uuid) {
      uuid = randomUUID().replaceAll('-', '')
      await this.db.put('m\0uuid', uuid)
    }
    this.uuidValue = uuid
    this.syncTimer = setInterval(() => void this.sync().catch(() => undefined), 1000)
    this.syncTimer.unref()
    for await (const value of this.db.values({gt: 'd\0', lt: 'd\x01'})) {
      const meta = JSON.parse(value) as Meta
      if (meta.t[winner(meta.t)].d) this.dead++
      else this.live++
    }
  }

  /** One synced write flushes LevelDB's log, with every batch before it. */
  private async sync(): Promise<void> {
    if (!this.dirty) return
    this.dirty = false
    await this.db.put('m\0sync', '', {sync: true})
  }

  async close(): Promise<void> {
    clearInterval(this.syncTimer)
    await this.chain.catch(() => undefined)
    await this.sync().catch(() => undefined)
    for (const wake of this.waiters) wake()
    await this.db.close()
  }

  get uuid(): string {
    return this.uuidValue
  }

  get updateSeq(): number {
    return this.seq
  }

  info(): {doc_count: number; doc_del_count: number; update_seq: number} {
    return {doc_count: this.live, doc_del_count: this.dead, update_seq: this.seq}
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.chain.then(job, job)
    this.chain = run.catch(() => undefined)
    return run
  }

  async meta(id: string): Promise<Meta | undefined> {
    const raw = await this.db.get(dKey(id))
    return raw === undefined ? undefined : (JSON.parse(raw) as Meta)
  }

  /** Many documents' metadata in one LevelDB call. */
  async metas(ids: string[]): Promise<Map<string, Meta | undefined>> {
    const unique = [...new Set(ids)]
    const values = unique.length > 0 ? await this.db.getMany(unique.map(dKey)) : []
    return new Map(unique.map((id, i) => [id, values[i] === undefined ? undefined : (JSON.parse(values[i]!) as Meta)]))
  }

  async tree(id: string): Promise<RevTree | undefined> {
    return (await this.meta(id))?.t
  }

  /** A revision as a document, or undefined when its body is not kept (not a leaf). */
  async revision(id: string, tree: RevTree, rev: string, options: {revs?: boolean; conflicts?: boolean} = {}): Promise<Doc | undefined> {
    const raw = await this.db.get(bKey(id, rev))
    if (raw === undefined) return undefined
    const doc: Doc = {_id: id, _rev: rev, ...(JSON.parse(raw) as Body)}
    if (tree[rev].d) doc._deleted = true
    if (options.revs) doc._revisions = revisions(tree, rev)
    if (options.conflicts) {
      const list = conflicts(tree)
      if (list.length > 0 && rev === winner(tree)) doc._conflicts = list
    }
    return doc
  }

  /** GET /records/ID: the winner (or `rev`); 404 when missing or deleted. */
  async get(id: string, options: {rev?: string; revs?: boolean; conflicts?: boolean} = {}): Promise<Doc> {
    const tree = await this.tree(id)
    if (!tree) throw notFound('missing')
    const rev = options.rev ?? winner(tree)
    if (!tree[rev]) throw notFound('missing')
    if (!options.rev && tree[rev].d) throw notFound('deleted')
    const doc = await this.revision(id, tree, rev, options)
    if (!doc) throw notFound('missing')
    return doc
  }

  /** open_revs: `all` or a list; each `{ok: doc}` or `{missing: rev}`. */
  async openRevs(id: string, wanted: 'all' | string[], options: {revs?: boolean; latest?: boolean} = {}): Promise<Array<{ok: Doc} | {missing: string}>> {
    const tree = (await this.tree(id)) ?? {}
    let revs: string[]
    if (wanted === 'all') revs = leaves(tree)
    else revs = options.latest ? [...new Set(wanted.flatMap((rev) => (tree[rev] ? leavesFrom(tree, rev) : [rev])))] : wanted
    const out: Array<{ok: Doc} | {missing: string}> = []
    for (const rev of revs) {
      const doc = tree[rev] ? await this.revision(id, tree, rev, options) : undefined
      out.push(doc ? {ok: doc} : {missing: rev})
    }
    return out
  }

  /** _bulk_get: for each {id, rev?}, the revision (or every leaf) as open_revs would give it; two LevelDB calls in all. */
  async bulkGet(entries: Array<{id: string; rev?: string}>, options: {revs?: boolean; latest?: boolean}): Promise<Array<Array<{ok: Doc} | {missing: string}>>> {
    const metas = await this.metas(entries.map((e) => e.id))
    const wanted = entries.map((entry) => {
      const tree = metas.get(entry.id)?.t ?? {}
      let revs: string[]
      if (entry.rev === undefined) revs = leaves(tree)
      else revs = options.latest && tree[entry.rev] ? leavesFrom(tree, entry.rev) : [entry.rev]
      return {id: entry.id, tree, revs}
    })
    const keys = wanted.flatMap((w) => w.revs.filter((rev) => w.tree[rev]).map((rev) => bKey(w.id, rev)))
    const bodies = new Map<string, string | undefined>()
    const values = keys.length > 0 ? await this.db.getMany(keys) : []
    keys.forEach((key, i) => bodies.set(key, values[i]))
    return wanted.map(({id, tree, revs}) =>
      revs.map((rev) => {
        const raw = tree[rev] ? bodies.get(bKey(id, rev)) : undefined
        if (raw === undefined) return {missing: rev}
        const doc: Doc = {_id: id, _rev: rev, ...(JSON.parse(raw) as Body)}
        if (tree[rev].d) doc._deleted = true
        if (options.revs) doc._revisions = revisions(tree, rev)
        return {ok: doc}
      }),
    )
  }

  /** _revs_diff: the revisions this database lacks. */
  async revsDiff(request: Record<string, unknown>): Promise<Record<string, {missing: string[]}>> {
    const out: Record<string, {missing: string[]}> = {}
    const metas = await this.metas(Object.keys(request))
    for (const [id, revs] of Object.entries(request)) {
      if (!Array.isArray(revs)) throw badRequest('_revs_diff wants {id: [revs]}')
      const tree = metas.get(id)?.t ?? {}
      const missing = revs.filter((rev) => typeof rev === 'string' && !tree[rev])
      if (missing.length > 0) out[id] = {missing: missing as string[]}
    }
    return out
  }

  /**
   * Writes documents in one batch. With newEdits, each must extend a leaf
   * (or create / recreate the document) and gets a new revision; without,
   * each carries its revision and history and is merged (idempotent).
   */
  writeDocs(docs: unknown[], newEdits: boolean): Promise<WriteResult[]> {
    return this.serial(async () => {
      const batch = this.db.batch()
      const pending = new Map<string, Meta | undefined>()
      const results: WriteResult[] = []
      let seq = this.seq
      let live = this.live
      let dead = this.dead
      const prefetched = await this.metas(docs.map((d) => (d as Doc)?._id).filter((id): id is string => typeof id === 'string'))
      for (const raw of docs) {
        let id: string | undefined
        try {
          const split = splitDoc(raw, !newEdits)
          const doc = raw as Doc
          id = split.id ?? randomUUID().replaceAll('-', '')
          const before = pending.has(id) ? pending.get(id) : prefetched.has(id) ? prefetched.get(id) : await this.meta(id)
          const tree: RevTree = before?.t ?? {}
          const deleted = doc._deleted === true
          let next: RevTree
          let rev: string
          if (newEdits) {
            const parent = this.parentFor(tree, doc._rev)
            rev = newRev(parent, deleted, split.body)
            if (tree[rev]) {
              results.push({ok: true, id, rev})
              continue
            }
            next = {...tree, [rev]: {p: parent, d: deleted ? 1 : 0}}
          } else {
            const path = pathOf(doc._rev as string, doc._revisions)
            if (!path) throw badRequest('Invalid rev format')
            const merged = mergePath(tree, path, deleted)
            if (!merged.added) continue
            next = merged.tree
            rev = path[0]
          }
          batch.put(bKey(id, rev), JSON.stringify(split.body))
          const parent = next[rev].p
          if (parent && tree[parent]) batch.del(bKey(id, parent))
          if (before) {
            batch.del(sKey(before.s))
            if (tree[winner(tree)].d) dead--
            else live--
          }
          if (next[winner(next)].d) dead++
          else live++
          seq++
          const meta: Meta = {t: next, s: seq}
          batch.put(dKey(id), JSON.stringify(meta))
          batch.put(sKey(seq), id)
          pending.set(id, meta)
          if (newEdits) results.push({ok: true, id, rev})
        } catch (error) {
          if (!(error instanceof CouchError)) throw error
          results.push({id: id ?? String((raw as Doc)?._id ?? ''), error: error.error, reason: error.reason})
        }
      }
      if (seq === this.seq) {
        await batch.close()
        return results
      }
      batch.put('m\0seq', String(seq))
      await batch.write()
      this.dirty = true
      this.seq = seq
      this.live = live
      this.dead = dead
      for (const wake of this.waiters) wake()
      return results
    })
  }

  /** The parent a new edit extends: the given leaf, or the deleted winner when recreating. */
  private parentFor(tree: RevTree, rev: unknown): string | null {
    if (rev === undefined || rev === null) {
      if (Object.keys(tree).length === 0) return null
      const top = winner(tree)
      if (tree[top].d) return top
      throw conflict()
    }
    if (!parseRev(rev)) throw badRequest('Invalid rev format')
    if (!tree[rev as string] || !leaves(tree).includes(rev as string)) throw conflict()
    return rev as string
  }

  /** One write through the new-edits path; throws its error. */
  async put(doc: unknown): Promise<WriteResult> {
    const [result] = await this.writeDocs([doc], true)
    if (result.error) throw new CouchError(result.error === 'conflict' ? 409 : 400, result.error, result.reason ?? '')
    return result
  }

  /** Changes after `since`, oldest first, one row per document at its latest change. */
  async changes(options: {since: number; limit?: number; allDocs?: boolean; owner?: string; includeDocs?: boolean}): Promise<{results: ChangeRow[]; last_seq: number}> {
    const results: ChangeRow[] = []
    const limit = options.limit ?? Infinity
    let last = options.since
    // Read the sequence index in chunks, so a filtered feed over a large database stays bounded in memory.
    const chunk = Math.min(Math.max(Number.isFinite(limit) ? limit : 1000, 100), 1000)
    for (;;) {
      const scanned: Array<[number, string]> = []
      for await (const [key, id] of this.db.iterator({gt: sKey(last), lt: 's\x01', limit: chunk})) scanned.push([Number(key.slice(2)), id])
      const metas = await this.metas(scanned.map(([, id]) => id))
      for (const [seq, id] of scanned) {
        last = seq
        const meta = metas.get(id)
        if (!meta || meta.s !== seq) continue
        const tree = meta.t
        const win = winner(tree)
        if (options.owner !== undefined && !(await this.ownedBy(id, tree, win, options.owner))) continue
        const revs = options.allDocs ? [win, ...leaves(tree).filter((rev) => rev !== win)] : [win]
        const row: ChangeRow = {seq, id, changes: revs.map((rev) => ({rev}))}
        if (tree[win].d) row.deleted = true
        if (options.includeDocs) row.doc = await this.revision(id, tree, win)
        results.push(row)
        if (results.length >= limit) return {results, last_seq: seq}
      }
      if (scanned.length < chunk) return {results, last_seq: last}
    }
  }

  /** The built-in filter site/owner: the winner's `owner`, or for a tombstone without one, the `NAME:` id prefix. */
  private async ownedBy(id: string, tree: RevTree, rev: string, owner: string): Promise<boolean> {
    const raw = await this.db.get(bKey(id, rev))
    const body = raw ? (JSON.parse(raw) as Body) : {}
    if (typeof body.owner === 'string') return body.owner === owner
    return id.startsWith(`${owner}:`)
  }

  /** Resolves when the sequence passes `since`, the timeout ends, or the signal aborts. */
  waitForChange(since: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.seq > since || signal?.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(wake)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const wake = (): void => {
        if (this.seq > since) done()
      }
      const timer = setTimeout(done, timeoutMs)
      this.waiters.add(wake)
      signal?.addEventListener('abort', done)
    })
  }

  async allDocs(options: {keys?: string[]; startkey?: string; endkey?: string; limit?: number; skip?: number; includeDocs?: boolean; descending?: boolean}): Promise<{total_rows: number; offset: number; rows: unknown[]}> {
    const rows: unknown[] = []
    const row = async (id: string, meta: Meta | undefined): Promise<unknown> => {
      if (!meta) return {key: id, error: 'not_found'}
      const win = winner(meta.t)
      const deleted = meta.t[win].d === 1
      if (deleted && !options.keys) return undefined
      const out: Record<string, unknown> = {id, key: id, value: deleted ? {rev: win, deleted: true} : {rev: win}}
      if (options.includeDocs) out.doc = deleted ? null : await this.revision(id, meta.t, win)
      return out
    }
    if (options.keys) {
      for (const id of options.keys) rows.push(await row(id, await this.meta(id)))
    } else {
      const range: {gte?: string; lte?: string; reverse?: boolean} = {gte: 'd\0', lte: 'd\0\uffff'}
      if (options.descending) {
        range.reverse = true
        if (options.startkey !== undefined) range.lte = dKey(options.startkey)
        if (options.endkey !== undefined) range.gte = dKey(options.endkey)
      } else {
        if (options.startkey !== undefined) range.gte = dKey(options.startkey)
        if (options.endkey !== undefined) range.lte = dKey(options.endkey)
      }
      let skip = options.skip ?? 0
      const limit = options.limit ?? Infinity
      for await (const [key, value] of this.db.iterator(range)) {
        if (rows.length >= limit) break
        const r = await row(key.slice(2), JSON.parse(value) as Meta)
        if (r === undefined) continue
        if (skip > 0) {
          skip--
          continue
        }
        rows.push(r)
      }
    }
    return {total_rows: this.live, offset: options.skip ?? 0, rows}
  }

  async getLocal(id: string): Promise<Doc> {
    const raw = await this.db.get(lKey(id))
    if (raw === undefined) throw notFound('missing')
    return JSON.parse(raw) as Doc
  }

  /** `_local` documents have no history: `0-N`, and a write must name the current revision (or any, when new_edits is off). */
  putLocal(id: string, doc: unknown): Promise<{ok: true; id: string; rev: string}> {
    return this.serial(async () => {
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badRequest('Document must be a JSON object')
      const raw = await this.db.get(lKey(id))
      const current = raw === undefined ? undefined : (JSON.parse(raw) as Doc)
      const given = (doc as Doc)._rev
      if (current && given !== undefined && given !== current._rev) throw conflict()
      const n = current ? Number(String(current._rev).slice(2)) + 1 : 1
      const rev = `0-${n}`
      const fullId = `_local/${id}`
      if ((doc as Doc)._deleted) await this.db.del(lKey(id))
      else await this.db.put(lKey(id), JSON.stringify({...(doc as Body), _id: fullId, _rev: rev}))
      this.dirty = true
      return {ok: true, id: fullId, rev}
    })
  }
}
