/**
 * One replication, source → target, by the CouchDB replication protocol:
 * replication id → both checkpoints (`_local/<id>`) → the start sequence
 * (the source's `source_last_seq` only when both sides hold the same session)
 * → batches of `_changes` (style=all_docs) → `_revs_diff` on the target →
 * `_bulk_get` (revs, latest) on the source → `_bulk_docs` with
 * new_edits:false on the target → a checkpoint on both sides. Only missing
 * revisions move, so a rerun moves nothing.
 */
import {createHash, randomUUID} from 'node:crypto'

import type {CouchClient} from './client.js'
import {CouchError} from './errors.js'
import type {Doc} from './store.js'

export interface ReplicateOptions {
  /** The built-in filter site/owner: only documents of this owner. */
  owner?: string
  /** Changes per batch (default 500). */
  batchSize?: number
  /**
   * Called after each batch written to the target, with how many documents
   * it stored: they count even if the replication fails afterwards (the
   * source dying before its checkpoint), when no result comes back.
   */
  onWritten?: (docs: number) => void
}

export interface ReplicationResult {
  replicationId: string
  startSeq: number | string
  lastSeq: number | string
  docsRead: number
  docsWritten: number
  /** Revisions the target lacked. */
  missingFound: number
  ms: number
}

interface Checkpoint {
  _rev?: string
  session_id: string
  source_last_seq: number | string
  replication_id_version: number
  history: Array<{session_id: string; recorded_seq: number | string; start_time: string; end_time: string; docs_read: number; docs_written: number}>
}

interface ChangesResponse {
  results: Array<{id: string; changes: Array<{rev: string}>}>
  last_seq: number | string
}

interface BulkGetResponse {
  results: Array<{id: string; docs: Array<{ok?: Doc; error?: unknown}>}>
}

export function replicationId(source: string, target: string, owner?: string): string {
  return createHash('md5')
    .update(JSON.stringify([source, target, owner ? {filter: 'site/owner', owner} : null]))
    .digest('hex')
}

/** Where to start: the newest sequence both checkpoints agree on, else 0 (CouchDB's rule). */
export function startSequence(source: Checkpoint | undefined, target: Checkpoint | undefined): number | string {
  if (!source || !target) return 0
  if (source.session_id === target.session_id) return source.source_last_seq
  const sessions = new Map(target.history.map((h) => [h.session_id, h.recorded_seq]))
  for (const h of source.history) if (sessions.has(h.session_id)) return h.recorded_seq
  return 0
}

export async function replicate(source: CouchClient, target: CouchClient, options: ReplicateOptions = {}): Promise<ReplicationResult> {
  const started = Date.now()
  const startTime = new Date(started).toISOString()
  const batchSize = options.batchSize ?? 500
  const id = replicationId(source.url, target.url, options.owner)
  const [sourceCp, targetCp] = await Promise.all([source.getLocal<Checkpoint>(id), target.getLocal<Checkpoint>(id)])
  const startSeq = startSequence(sourceCp, targetCp)
  const cps = {source: sourceCp, target: targetCp}
  let since = startSeq
  let docsRead = 0
  let docsWritten = 0
  let missingFound = 0
  const state = {bulkGet: true}
  const filter = options.owner ? `&filter=site/owner&owner=${encodeURIComponent(options.owner)}` : ''
  for (;;) {
    const changes = await source.get<ChangesResponse>(`_changes?style=all_docs&limit=${batchSize}&since=${encodeURIComponent(String(since))}${filter}`)
    if (changes.results.length > 0) {
      const wanted: Record<string, string[]> = {}
      for (const row of changes.results) wanted[row.id] = row.changes.map((c) => c.rev)
      const diff = await target.post<Record<string, {missing: string[]}>>('_revs_diff', wanted)
      const missing = Object.entries(diff).flatMap(([docId, entry]) => entry.missing.map((rev) => ({id: docId, rev})))
      missingFound += missing.length
      if (missing.length > 0) {
        const docs = await fetchRevisions(source, diff, missing, state)
        docsRead += docs.length
        if (docs.length > 0) {
          const errors = await target.post<unknown[]>('_bulk_docs', {docs, new_edits: false})
          const written = docs.length - (Array.isArray(errors) ? errors.length : 0)
          docsWritten += written
          options.onWritten?.(written)
        }
      }
    }
    const advanced = String(changes.last_seq) !== String(since)
    since = changes.last_seq
    if (advanced) await checkpoint(source, target, id, cps, since, {startTime, docsRead, docsWritten})
    if (changes.results.length < batchSize || !advanced) break
  }
  return {replicationId: id, startSeq, lastSeq: since, docsRead, docsWritten, missingFound, ms: Date.now() - started}
}

/**
 * The missing revisions with their histories: one `_bulk_get`, or where the
 * source has none (CouchDB before 2.3), one `GET ID?open_revs=[…]&revs=true&latest=true` per document.
 */
async function fetchRevisions(source: CouchClient, diff: Record<string, {missing: string[]}>, missing: Array<{id: string; rev: string}>, state: {bulkGet: boolean}): Promise<Doc[]> {
  if (state.bulkGet) {
    try {
      const got = await source.post<BulkGetResponse>('_bulk_get?revs=true&latest=true', {docs: missing})
      return got.results.flatMap((r) => r.docs.flatMap((d) => (d.ok ? [d.ok] : [])))
    } catch (error) {
      if (!(error instanceof CouchError) || ![400, 404, 405, 501].includes(error.status)) throw error
      state.bulkGet = false
    }
  }
  const docs: Doc[] = []
  for (const [id, entry] of Object.entries(diff)) {
    const found = await source.get<Array<{ok?: Doc}>>(`${encodeURIComponent(id)}?revs=true&latest=true&open_revs=${encodeURIComponent(JSON.stringify(entry.missing))}`)
    for (const r of found) if (r.ok) docs.push(r.ok)
  }
  return docs
}

/** Writes the same session to both sides; each keeps the five newest sessions. */
async function checkpoint(
  source: CouchClient,
  target: CouchClient,
  id: string,
  cps: {source?: Checkpoint; target?: Checkpoint},
  seq: number | string,
  stats: {startTime: string; docsRead: number; docsWritten: number},
): Promise<void> {
  const session = randomUUID().replaceAll('-', '')
  const entry = {session_id: session, recorded_seq: seq, start_time: stats.startTime, end_time: new Date().toISOString(), docs_read: stats.docsRead, docs_written: stats.docsWritten}
  const write = async (client: CouchClient, previous: Checkpoint | undefined): Promise<Checkpoint> => {
    const doc: Checkpoint = {session_id: session, source_last_seq: seq, replication_id_version: 3, history: [entry, ...(previous?.history ?? [])].slice(0, 5)}
    if (previous?._rev) doc._rev = previous._rev
    const result = await client.put<{rev: string}>(`_local/${id}`, doc)
    return {...doc, _rev: result.rev}
  }
  // Later batches of this run write over these.
  ;[cps.source, cps.target] = await Promise.all([write(source, cps.source), write(target, cps.target)])
}
