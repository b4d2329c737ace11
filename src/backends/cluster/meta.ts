import {randomBytes} from 'node:crypto'

import type {Entry} from '../adapter.js'
import {ConflictError, NotFoundError, TemporaryError, UsageError} from '../errors.js'
import {baseName, joinPath, parentOf} from '../remote-path.js'
import type {ClusterStore} from './store.js'

/** The database that holds the directory tree, the manifests and upload intents. */
export const META_DB = 1
export const ROOT_ID = 'root'

export type FileRecord = {type: 'file'; modified: string; size: number; manifest: string; sha256: string}
export type DirLink = {type: 'dir'; modified: string; id: string}
/** One name in a directory record. Directories point at their own record; files at a content-addressed manifest. */
export type EntryRecord = DirLink | FileRecord

/** A directory's record, stored as JSON under `d:<id>`. */
export interface DirRecord {
  entries: Record<string, EntryRecord>
}

export const dirKey = (id: string) => `d:${id}`
const MAX_CAS_ATTEMPTS = 64
/** Parsed directory records kept per process. */
const PARSED_RECORDS = 256

interface QueuedChange {
  change: (record: DirRecord) => void
  resolve: (record: DirRecord) => void
  reject: (error: unknown) => void
}

/**
 * The directory tree, inode style: each directory is a record under its own
 * random id, and a name links to it. Every change that makes something
 * visible is one compare-and-set on one directory record at the router, so
 * concurrent clients never lose each other's changes; a record built but not
 * yet linked is invisible, which is all a client dying mid-operation leaves.
 * Moves only relink, so a directory moves in O(1).
 */
export class MetaTree {
  private readonly queues = new Map<string, QueuedChange[]>()
  /** Parsed records by id, reused while the stored version is unchanged: parsing a large directory's JSON was most of an upload's CPU. */
  private readonly parsed = new Map<string, {version: string; record: DirRecord}>()

  constructor(private readonly store: ClusterStore) {}

  /** A directory's record and version. The record is shared and frozen: changes work on copies. */
  private async read(id: string): Promise<{record: DirRecord; version: string | null} | null> {
    // A record we hold is checked by its version alone: no JSON moves or is
    // parsed while the directory is unchanged (a download walking a large
    // directory, or our own uploads into it, whose writes we remember).
    const held = this.parsed.get(id)
    if (held && (await this.store.currentVersion(META_DB, dirKey(id))) === held.version) return {record: held.record, version: held.version}
    const found = await this.store.getVersioned(META_DB, dirKey(id))
    if (!found) {
      this.parsed.delete(id)
      return id === ROOT_ID ? {record: {entries: {}}, version: null} : null
    }

    const record = JSON.parse(found.value.toString('utf8')) as DirRecord
    this.remember(id, found.version, record)
    return {record, version: found.version}
  }

  /** Keeps a record (read, or just written by us) as the parsed form of `version`. */
  private remember(id: string, version: string, record: DirRecord): void {
    Object.freeze(record.entries)
    Object.freeze(record)
    this.parsed.delete(id)
    this.parsed.set(id, {version, record})
    if (this.parsed.size > PARSED_RECORDS) this.parsed.delete(this.parsed.keys().next().value as string)
  }

  /** The id of the directory at `path`; NotFoundError('dir') if it is missing, ConflictError if a file. */
  async resolveDir(path: string): Promise<string> {
    let id = ROOT_ID
    let walked = ''
    for (const name of path.split('/').filter(Boolean)) {
      walked += `/${name}`
      const found = await this.read(id)
      const link = found?.record.entries[name]
      if (!link) throw new NotFoundError(`${walked}: directory not found`, 'dir')
      if (link.type !== 'dir') throw new ConflictError(`${walked}: not a directory`, 'not-directory')
      id = link.id
    }

    return id
  }

  /**
   * Applies `change` to a directory's record atomically, retrying when another
   * writer changed it first. `change` may throw to abort (a conflict, say),
   * but only before it changes anything; it must only set and delete names
   * in `entries`.
   *
   * Changes to one directory from this process are group-committed: while
   * one compare-and-set on the record is in flight, later changes queue, and
   * the next round applies them all in one read-modify-write. A directory
   * upload with --transfers 8 thus costs one round per batch instead of
   * eight clashing ones.
   */
  update(id: string, change: (record: DirRecord) => void): Promise<DirRecord> {
    return new Promise((resolve, reject) => {
      const queued = this.queues.get(id)
      if (queued) {
        queued.push({change, resolve, reject})
        return
      }

      const queue = [{change, resolve, reject}]
      this.queues.set(id, queue)
      void this.drain(id, queue)
    })
  }

  private async drain(id: string, queue: QueuedChange[]): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0)
      await this.commit(id, batch).catch((error: unknown) => {
        for (const waiter of batch) waiter.reject(error)
      })
    }

    this.queues.delete(id)
  }

  /** One read-modify-write of the record for a batch of changes, retried on a clash. Each change succeeds or fails on its own. */
  private async commit(id: string, batch: QueuedChange[]): Promise<void> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const current = await this.read(id)
      if (!current) throw new NotFoundError('directory not found (removed meanwhile)', 'dir')
      // One shallow copy per round: every change checks before it sets or
      // deletes a name, so one that throws has changed nothing.
      const record: DirRecord = {entries: {...current.record.entries}}
      const failures = batch.map(({change}) => {
        try {
          change(record)
          return null
        } catch (error) {
          return {error}
        }
      })
      const changed = failures.includes(null)
      const version = changed ? await this.store.compareAndSet(META_DB, dirKey(id), current.version, Buffer.from(JSON.stringify(record))) : null
      if (!changed || version !== null) {
        if (version !== null) this.remember(id, version, record)
        failures.forEach((failure, i) => (failure ? batch[i].reject(failure.error) : batch[i].resolve(record)))
        return
      }

      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 2 ** attempt)))
    }

    throw new TemporaryError('too much contention on a directory record; try again')
  }

  /** The record at `path`, or null if the name is missing; NotFoundError('dir') if the parent is. */
  async lookup(path: string): Promise<EntryRecord | null> {
    if (path === '/') return {type: 'dir', id: ROOT_ID, modified: new Date(0).toISOString()}
    const parent = await this.read(await this.resolveDir(parentOf(path)))
    return parent?.record.entries[baseName(path)] ?? null
  }

  async stat(path: string): Promise<Entry> {
    const record = await this.lookup(path).catch((error) => {
      if (error instanceof NotFoundError || error instanceof ConflictError) return null
      throw error
    })
    if (!record) throw new NotFoundError(`${path}: file or directory not found`, 'file')
    return toEntry(path, record)
  }

  async list(dir: string): Promise<Entry[]> {
    const found = await this.read(await this.resolveDir(dir))
    if (!found) throw new NotFoundError(`${dir}: directory not found`, 'dir')
    return Object.entries(found.record.entries)
      .map(([name, record]) => toEntry(joinPath(dir, name), record))
      // By code point: callers that show a listing sort it for people (src/ops/files.ts); localeCompare's first call costs 7 ms.
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  async mkdir(path: string): Promise<Entry> {
    if (path === '/') throw new ConflictError('/: already exists', 'exists')
    const parent = await this.resolveDir(parentOf(path))
    const link: DirLink = {type: 'dir', id: newId(), modified: new Date().toISOString()}
    await this.store.set(META_DB, dirKey(link.id), Buffer.from(JSON.stringify({entries: {}})))
    await this.update(parent, (record) => {
      if (record.entries[baseName(path)]) throw new ConflictError(`${path}: already exists`, 'exists')
      record.entries[baseName(path)] = link
    })
    return toEntry(path, link)
  }

  /** Checks, before any piece moves, that a file may be written at `path`. */
  async checkWritable(path: string, overwrite: boolean): Promise<void> {
    const parent = await this.read(await this.resolveDir(parentOf(path)))
    if (parent) assertWritable(parent.record, path, overwrite)
  }

  /** Links a finished file into its directory: the moment an upload becomes visible. */
  async linkFile(path: string, file: FileRecord, overwrite: boolean): Promise<Entry> {
    await this.update(await this.resolveDir(parentOf(path)), (dir) => {
      assertWritable(dir, path, overwrite)
      dir.entries[baseName(path)] = file
    })
    return toEntry(path, file)
  }

  async remove(path: string, recursive: boolean): Promise<void> {
    if (path === '/') throw new UsageError('refusing to remove the root directory')
    const record = await this.lookup(path)
    if (!record) throw new NotFoundError(`${path}: file or directory not found`, 'file')
    if (record.type === 'dir' && !recursive) throw new UsageError(`${path}: is a directory; use -r`)
    await this.update(await this.resolveDir(parentOf(path)), (dir) => {
      if (!dir.entries[baseName(path)]) throw new NotFoundError(`${path}: file or directory not found`, 'file')
      delete dir.entries[baseName(path)]
    })
    if (record.type === 'dir') await this.dropRecords(record.id)
  }

  /**
   * Copies or moves `src` to the exact path `dst`. A copy shares file
   * manifests (no piece data moves) and builds new directory records before
   * one CAS links them. A move links the destination before it unlinks the
   * source, so a crash in between leaves two names, never none.
   */
  async transfer(src: string, dst: string, mode: 'copy' | 'move', overwrite: boolean): Promise<Entry> {
    const record = await this.lookup(src)
    if (!record) throw new NotFoundError(`${src}: file or directory not found`, 'file')
    const now = new Date().toISOString()
    const linked: EntryRecord =
      mode === 'move' ? record : record.type === 'dir' ? {type: 'dir', id: await this.copyRecords(record.id), modified: now} : {...record, modified: now}
    const dstParent = await this.resolveDir(parentOf(dst))
    const srcParent = await this.resolveDir(parentOf(src))
    const allowReplace = overwrite && record.type === 'file'
    if (mode === 'move' && srcParent === dstParent) {
      await this.update(dstParent, (dir) => {
        if (!dir.entries[baseName(src)]) throw new NotFoundError(`${src}: file or directory not found`, 'file')
        assertWritable(dir, dst, allowReplace)
        delete dir.entries[baseName(src)]
        dir.entries[baseName(dst)] = linked
      })
      return toEntry(dst, linked)
    }

    await this.update(dstParent, (dir) => {
      assertWritable(dir, dst, allowReplace)
      dir.entries[baseName(dst)] = linked
    })
    if (mode === 'move') {
      await this.update(srcParent, (dir) => {
        delete dir.entries[baseName(src)]
      })
    }

    return toEntry(dst, linked)
  }

  /** Every file reachable from the root (for about and gc). */
  async *files(id = ROOT_ID, path = '/'): AsyncGenerator<{path: string; record: FileRecord}> {
    const found = await this.read(id)
    if (!found) return
    for (const [name, record] of Object.entries(found.record.entries)) {
      if (record.type === 'file') yield {path: joinPath(path, name), record}
      else yield* this.files(record.id, joinPath(path, name))
    }
  }

  /**
   * Every entry below `dir` (rclone's ListR): the path is resolved once and
   * each directory below is read by its id, `concurrency` at once, one round
   * trip each, instead of walking its path again per directory.
   */
  async listRecursive(dir: string, concurrency = 8): Promise<Entry[]> {
    const out: Entry[] = []
    let level: Array<{id: string; path: string}> = [{id: await this.resolveDir(dir), path: dir}]
    while (level.length > 0) {
      const next: Array<{id: string; path: string}> = []
      for (let i = 0; i < level.length; i += concurrency) {
        const batch = level.slice(i, i + concurrency)
        const records = await Promise.all(batch.map((d) => this.read(d.id)))
        records.forEach((found, j) => {
          // A directory removed while we walked is skipped, as a listing would not show it.
          for (const [name, record] of Object.entries(found?.record.entries ?? {})) {
            const path = joinPath(batch[j].path, name)
            out.push(toEntry(path, record))
            if (record.type === 'dir') next.push({id: record.id, path})
          }
        })
      }

      level = next
    }

    return out
  }

  /** Ids of every directory reachable from the root. */
  async reachableDirs(id = ROOT_ID, into = new Set<string>()): Promise<Set<string>> {
    into.add(id)
    const found = await this.read(id)
    for (const record of Object.values(found?.record.entries ?? {})) {
      if (record.type === 'dir' && !into.has(record.id)) await this.reachableDirs(record.id, into)
    }

    return into
  }

  private async copyRecords(id: string): Promise<string> {
    const found = await this.read(id)
    const record: DirRecord = {entries: {}}
    for (const [name, entry] of Object.entries(found?.record.entries ?? {})) {
      record.entries[name] = entry.type === 'dir' ? {...entry, id: await this.copyRecords(entry.id)} : entry
    }

    const copy = newId()
    await this.store.set(META_DB, dirKey(copy), Buffer.from(JSON.stringify(record)))
    return copy
  }

  private async dropRecords(id: string): Promise<void> {
    const found = await this.read(id)
    for (const entry of Object.values(found?.record.entries ?? {})) {
      if (entry.type === 'dir') await this.dropRecords(entry.id)
    }

    await this.store.del(META_DB, [dirKey(id)])
  }
}

function newId(): string {
  return randomBytes(12).toString('hex')
}

function assertWritable(dir: DirRecord, path: string, overwrite: boolean): void {
  const existing = dir.entries[baseName(path)]
  if (!existing) return
  if (existing.type === 'dir') throw new ConflictError(`${path}: is an existing directory`, 'is-directory')
  if (!overwrite) throw new ConflictError(`${path}: destination already exists`, 'exists', {hint: 'use --overwrite'})
}

function toEntry(path: string, record: EntryRecord): Entry {
  return record.type === 'dir'
    ? {name: baseName(path), path, type: 'dir', size: null, modified: record.modified}
    : {name: baseName(path), path, type: 'file', size: record.size, modified: record.modified, sha256: record.sha256}
}
