import {pipeline} from 'node:stream/promises'
import {Writable} from 'node:stream'

import type {Entry, HashName} from '../backends/adapter.js'
import {DiskError, NotFoundError, runPool, UsageError} from '../base/index.js'
import {HashingStream} from '../backends/hashing.js'
import {isWithin, joinPath, normalizePath} from '../backends/remote-path.js'
import {listTree, type TreeListing} from './listing.js'
import {type Progress, silentProgress} from './progress.js'
import type {Session, Target} from './session.js'
import {addContext, copyFiles, type FileCopy} from './transfer.js'
import {ensureDir, mkdirParents} from './tree.js'

/**
 * One side of a sync or check as the user wrote it: `./rel`, `../rel`, `.`,
 * `..` or `file:/abs` is a folder of this machine; anything else a backend
 * path (`yandex:/a`, or `/a` on the chosen backend).
 */
export async function resolveSide(session: Session, input: string): Promise<Target> {
  if (input.startsWith('file:')) {
    const rest = input.slice('file:'.length).replace(/^\/\/(?=\/)/, '')
    normalizePath(rest, input)
    return session.local(rest)
  }

  if (input === '.' || input === '..' || input.startsWith('./') || input.startsWith('../')) return session.local(input)
  return session.remote(input)
}

export interface CompareOptions {
  /** Compare by hash even where only one side (or neither) reports one: the content is read and hashed where needed. */
  checksum?: boolean
  /** Files hashed at once when hashing is needed. */
  concurrency?: number
}

/** The hash both entries report, strongest first. */
function sharedHash(a: Entry, b: Entry): HashName | undefined {
  return (['sha256', 'md5'] as const).find((name) => Boolean(a[name] && b[name]))
}

/** A file's hash: from its entry when the backend gave it, else by reading it once. */
export async function hashOf(target: Target, entry: Entry, name: HashName): Promise<string> {
  const known = entry[name]
  if (known) return known.toLowerCase()
  const hashing = new HashingStream(undefined, [name])
  const input = await target.adapter.openRead(entry.path, {entry})
  await pipeline(input, hashing, new Writable({write: (_chunk, _encoding, callback) => callback()}))
  return hashing.digests()[name]!
}

/**
 * Whether two files hold the same content, the rclone way: sizes first;
 * then a hash both backends report; else, with `checksum`, a hash computed
 * where missing (the local side is read); else the modification time (the
 * destination is not older than the source).
 */
export async function sameFile(src: Target, a: Entry, dst: Target, b: Entry, options: CompareOptions = {}): Promise<boolean> {
  const known = sameByListing(a, b, Boolean(options.checksum))
  if (known !== undefined) return known
  const name: HashName = a.sha256 || b.sha256 ? 'sha256' : a.md5 || b.md5 ? 'md5' : 'sha256'
  const [x, y] = await Promise.all([hashOf(src, a, name), hashOf(dst, b, name)])
  return x === y
}

/**
 * sameFile's answer from the two listings alone, without reading content:
 * undefined when a hash must be computed first (`checksum`, and no hash
 * both sides report). A sync with nothing to do decides every file here,
 * in one loop, with no promise per file.
 */
function sameByListing(a: Entry, b: Entry, checksum: boolean): boolean | undefined {
  if (a.size !== b.size) return false
  const shared = sharedHash(a, b)
  if (shared) return a[shared]!.toLowerCase() === b[shared]!.toLowerCase()
  if (checksum) return undefined
  if (!a.modified || !b.modified) return true
  return Date.parse(b.modified) >= Date.parse(a.modified) - MODIFY_WINDOW_MS
}

/**
 * How much older than the source a destination may look and still count as
 * written after it: Yandex.Disk keeps whole seconds, so a copy made in the
 * same second as the change can read up to a second earlier (rclone's modify window).
 */
const MODIFY_WINDOW_MS = 1000

export interface Differences {
  /** Only in SRC (files and directories). */
  onlySrc: string[]
  /** Only in DST. */
  onlyDst: string[]
  /** In both, different (content, or a file on one side and a directory on the other). */
  differ: string[]
  /** Files in both, the same. */
  same: number
}

/** Lists both trees at once. */
async function listBoth(src: Target, dst: Target, concurrency: number): Promise<[TreeListing, TreeListing]> {
  return Promise.all([listTree(src, {concurrency}), listTree(dst, {concurrency, missingIsEmpty: true})])
}

/** Compares the files of two listings; `differ` gets the relative paths of changed files, in order. */
async function compareFiles(
  src: Target,
  srcTree: TreeListing,
  dst: Target,
  dstTree: TreeListing,
  options: CompareOptions,
): Promise<{changed: string[]; same: number}> {
  const both: string[] = []
  for (const key of srcTree.files.keys()) if (dstTree.files.has(key)) both.push(key)
  both.sort()
  const changed = new Set<string>()
  // Decided from the listings where possible; only files to hash go through the pool.
  const toHash: string[] = []
  for (const key of both) {
    const same = sameByListing(srcTree.files.get(key)!, dstTree.files.get(key)!, Boolean(options.checksum))
    if (same === undefined) toHash.push(key)
    else if (!same) changed.add(key)
  }

  const failures = await runPool(toHash, options.concurrency ?? 8, async (key) => {
    const same = await sameFile(src, srcTree.files.get(key)!, dst, dstTree.files.get(key)!, options)
    if (!same) changed.add(key)
  })
  if (failures.length > 0) throw addContext(failures[0].error, `cannot compare ${failures[0].item}`)
  return {changed: both.filter((key) => changed.has(key)), same: both.length - changed.size}
}

/** `check`: what differs between two trees, by size and hash (content hashed where a side has none). */
export async function checkTrees(src: Target, dst: Target, options: {oneWay?: boolean; concurrency?: number} = {}): Promise<Differences> {
  const concurrency = options.concurrency ?? 8
  const [srcTree, dstTree] = await Promise.all([listTree(src, {concurrency}), listTree(dst, {concurrency})])
  const {changed, same} = await compareFiles(src, srcTree, dst, dstTree, {checksum: true, concurrency})
  const srcAll = new Set([...srcTree.files.keys(), ...srcTree.dirs.keys()])
  const dstAll = new Set([...dstTree.files.keys(), ...dstTree.dirs.keys()])
  const kindDiffers = [...srcAll].filter(
    (key) => dstAll.has(key) && srcTree.files.has(key) !== dstTree.files.has(key),
  )
  return {
    onlySrc: [...srcAll].filter((key) => !dstAll.has(key)).sort(),
    onlyDst: options.oneWay ? [] : [...dstAll].filter((key) => !srcAll.has(key)).sort(),
    differ: [...changed, ...kindDiffers].sort(),
    same,
  }
}

export interface SyncOptions {
  dryRun?: boolean
  checksum?: boolean
  transfers?: number
  checkers?: number
  retries?: number
  retryBaseMs?: number
  progress?: Progress
  log?: (message: string) => void
  /** Told each action as it is decided (dry run) or done: `copy a.txt`, `update b.txt`, `delete c/`. */
  onAction?: (action: SyncAction) => void
}

export interface SyncAction {
  kind: 'copy' | 'update' | 'delete' | 'mkdir'
  /** Relative to the two roots; directories end in `/`. */
  path: string
  bytes: number
}

export interface SyncResult {
  copied: number
  deleted: number
  unchanged: number
  bytes: number
}

/**
 * Makes DST identical to SRC (DESIGN.md §15): copies what is new or
 * changed through the transfer pool of transfer.ts, then deletes what SRC
 * lacks. SRC is only read. An interrupted sync leaves whole files only
 * (every backend writes atomically), so running it again finishes the job.
 */
export async function syncTrees(src: Target, dst: Target, options: SyncOptions = {}): Promise<SyncResult> {
  if (src.adapter === dst.adapter && (isWithin(dst.path, src.path) || isWithin(src.path, dst.path))) {
    throw new UsageError(`cannot sync ${src.path} to ${dst.path}: one is inside the other`)
  }

  const concurrency = options.checkers ?? 8
  const roots = Promise.all([
    src.adapter.stat(src.path),
    dst.adapter.stat(dst.path).catch((error: unknown) => {
      if (error instanceof NotFoundError) return undefined
      throw error
    }),
  ])
  roots.catch(() => {}) // Awaited below, after the listings (whose errors say more).
  const [srcTree, dstTree] = await listBoth(src, dst, concurrency)
  const [srcRoot, dstRoot] = await roots
  if (srcRoot.type !== 'dir') throw new UsageError(`cannot sync ${src.path}: not a directory (use cp for one file)`)
  if (dstRoot && dstRoot.type !== 'dir') throw new UsageError(`cannot sync to ${dst.path}: it is a file, not a directory`)
  const {changed, same} = await compareFiles(src, srcTree, dst, dstTree, {checksum: options.checksum, concurrency})
  const at = (key: string) => joinPath(dst.path, key)

  // Plan.
  const copies: Array<FileCopy & {key: string; update: boolean}> = []
  for (const [key, entry] of [...srcTree.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!dstTree.files.has(key)) copies.push({key, entry, final: at(key), update: false})
  }

  for (const key of changed) copies.push({key, entry: srcTree.files.get(key)!, final: at(key), update: true})
  const mkdirs = [...srcTree.dirs.keys()].filter((key) => !dstTree.dirs.has(key)).sort()
  // In DST, not in SRC as the same kind: deleted; only the topmost of a deleted subtree is named.
  const doomed = [
    ...[...dstTree.files.keys()].filter((key) => !srcTree.files.has(key)),
    ...[...dstTree.dirs.keys()].filter((key) => !srcTree.dirs.has(key)),
  ].sort()
  const doomedDirs = new Set(doomed.filter((key) => dstTree.dirs.has(key)))
  const deletes = doomed.filter((key) => !ancestors(key).some((parent) => doomedDirs.has(parent)))
  // Something of the other kind in the way of a copy or a directory goes first.
  const inTheWay = new Set(deletes.filter((key) => srcTree.files.has(key) || srcTree.dirs.has(key)))

  const result: SyncResult = {copied: copies.length, deleted: deletes.length, unchanged: same, bytes: 0}
  for (const copy of copies) result.bytes += copy.entry.size ?? 0
  const say = (kind: SyncAction['kind'], key: string, bytes = 0) => options.onAction?.({kind, path: key, bytes})
  const deleteOne = async (key: string) => {
    const dir = dstTree.dirs.has(key)
    await dst.adapter.remove(at(key), {recursive: dir}).catch((error) => {
      throw addContext(error, `cannot delete ${at(key)}`)
    })
    say('delete', dir ? `${key}/` : key)
  }

  if (options.dryRun) {
    for (const key of mkdirs) say('mkdir', `${key}/`)
    for (const copy of copies) say(copy.update ? 'update' : 'copy', copy.key, copy.entry.size ?? 0)
    for (const key of deletes) say('delete', dstTree.dirs.has(key) ? `${key}/` : key)
    return result
  }

  for (const key of inTheWay) await deleteOne(key)
  if (copies.length > 0 || mkdirs.length > 0) await ensureDir(dst.adapter, dst.path)
  for (const key of mkdirs) {
    await mkdirParents(dst.adapter, at(key))
    say('mkdir', `${key}/`)
  }

  const progress = options.progress ?? silentProgress
  for (const copy of copies) progress.addTotal(copy.entry.size ?? 0)
  const failures = await copyFiles(
    src,
    dst,
    copies,
    {
      overwrite: true,
      transfers: options.transfers,
      checkers: options.checkers,
      retries: options.retries,
      retryBaseMs: options.retryBaseMs,
      progress,
      log: options.log,
    },
    (file) => {
      const copy = file as (typeof copies)[number]
      say(copy.update ? 'update' : 'copy', copy.key, copy.entry.size ?? 0)
    },
  )
  if (failures.length > 0) {
    // As rclone: no deletes after a failed transfer, so nothing is lost that was not replaced.
    const first = failures[0].error
    const summary = `cannot sync ${src.path} to ${dst.path}: ${failures.length} of ${copies.length} files failed; nothing deleted; first`
    throw first instanceof DiskError ? first.withContext(summary) : new Error(`${summary}: ${String(first)}`)
  }

  const rest = deletes.filter((key) => !inTheWay.has(key))
  const deleteFailures = await runPool(rest, options.transfers ?? 4, deleteOne)
  if (deleteFailures.length > 0) throw deleteFailures[0].error
  return result
}

/** `a/b/c` → [`a`, `a/b`]. */
function ancestors(key: string): string[] {
  const parts = key.split('/')
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'))
}
