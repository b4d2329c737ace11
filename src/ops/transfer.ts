import {pipeline, Readable, Transform} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'

import {WHOLE_FILE_BYTES, type Entry, type Prepared} from '../backends/adapter.js'
import {addContext, DiskError, IntegrityError, NotFoundError, prefetch, readAhead, runPool, TemporaryError, UsageError} from '../base/index.js'
import {isSelfVerifying, markSelfVerifying} from '../backends/hashing.js'
import {isWithin, joinPath, parentOf} from '../backends/remote-path.js'
import {backoffDelay} from '../backends/retry.js'
import {type Progress, silentProgress} from './progress.js'
import type {Target} from './session.js'
import {ensureDir, mkdirParents, rebase, walk} from './tree.js'

export interface TransferOptions {
  /** Replace existing destination files. */
  overwrite?: boolean
  /** Files moved in parallel. */
  transfers?: number
  /** Files whose transfers are prepared ahead (links resolved) while others move data; rclone's --checkers. Default 8. */
  checkers?: number
  /** Attempts after the first, per file, for temporary failures and hash mismatches. */
  retries?: number
  retryBaseMs?: number
  progress?: Progress
  log?: (message: string) => void
  /** The word for errors: `cannot <verb> SRC to DST: …` (default: copy or move). */
  verb?: string
}

export interface TransferResult {
  source: string
  destination: string
  type: 'file' | 'dir'
  /** Files copied or moved; null when a backend did a whole directory server-side and did not count. */
  files: number | null
  /** Their bytes; null likewise. */
  bytes: number | null
  /** True when the backend did it without moving content through us. */
  serverSide: boolean
}

type Mode = 'copy' | 'move'

/**
 * Copies or moves `src` to `dst` following DESIGN.md §2's destination rules:
 * into an existing directory under its own name, else to the exact path;
 * missing parents are created; an existing file is a ConflictError unless
 * `overwrite`. Server-side where the backend can, streamed otherwise (across
 * backends, and for upload and download, which are transfers from or to the
 * host filesystem).
 */
export async function transfer(src: Target, dst: Target, mode: Mode, options: TransferOptions = {}): Promise<TransferResult> {
  const verb = options.verb ?? mode
  const context = (final: string) => `cannot ${verb} ${src.path} to ${final}`
  const source = await src.adapter.stat(src.path).catch((error) => {
    throw addContext(error, context(dst.path))
  })
  const final = await destinationFor(dst, source)
  const sameBackend = src.adapter === dst.adapter
  if (sameBackend && (isWithin(final, src.path) || src.path === final)) {
    throw new UsageError(`${context(final)}: the destination is the source or inside it`)
  }

  try {
    const serverSide = sameBackend ? (mode === 'copy' ? dst.adapter.copy : dst.adapter.move) : undefined
    if (serverSide) {
      const entry = await withParents(dst, final, () =>
        serverSide.call(dst.adapter, src.path, final, {overwrite: options.overwrite}),
      )
      const file = entry.type === 'file'
      return {source: src.path, destination: final, type: entry.type, files: file ? 1 : null, bytes: file ? (entry.size ?? source.size) : null, serverSide: true}
    }

    const result =
      source.type === 'file' ? await streamOne(src, source, dst, final, options) : await streamTree(src, dst, final, options)
    if (mode === 'move') await src.adapter.remove(src.path, {recursive: source.type === 'dir'})
    return result
  } catch (error) {
    throw addContext(error, context(final))
  }
}

/** The final path: inside `dst` if it is an existing directory, else `dst` itself. */
async function destinationFor(dst: Target, source: Entry): Promise<string> {
  try {
    const existing = await dst.adapter.stat(dst.path)
    if (existing.type === 'dir' && source.name !== '') return joinPath(dst.path, source.name)
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error
  }

  return dst.path
}

/** Runs a server-side operation; if the destination's parent is missing, creates it and tries once more. */
async function withParents<T>(dst: Target, final: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (error) {
    if (!(error instanceof NotFoundError && error.kind === 'dir') || final === '/') throw error
    await mkdirParents(dst.adapter, parentOf(final))
    return operation()
  }
}

async function streamOne(src: Target, source: Entry, dst: Target, final: string, options: TransferOptions): Promise<TransferResult> {
  const progress = options.progress ?? silentProgress
  await ensureDir(dst.adapter, parentOf(final))
  progress.addTotal(source.size ?? 0)
  await copyFile(src, source, dst, final, options)
  return {source: src.path, destination: final, type: 'file', files: 1, bytes: source.size ?? 0, serverSide: false}
}

/** How many listed files a tree transfer may hold ahead of its transfers. */
const LIST_AHEAD = 1024

async function streamTree(src: Target, dst: Target, final: string, options: TransferOptions): Promise<TransferResult> {
  const progress = options.progress ?? silentProgress
  await mkdirParents(dst.adapter, final)
  let files = 0
  let bytes = 0
  async function* filesToCopy(): AsyncGenerator<Entry> {
    for await (const entry of walk(src.adapter, src.path)) {
      const target = rebase(entry.path, src.path, final)
      if (entry.type === 'dir') {
        await mkdirParents(dst.adapter, target)
        continue
      }

      files++
      bytes += entry.size ?? 0
      progress.addTotal(entry.size ?? 0)
      yield entry
    }
  }

  // The listing runs ahead of the transfers (bounded): the next page or folder is listed while files move.
  const listed = readAhead(filesToCopy(), LIST_AHEAD)
  const failures = await copyFiles(src, dst, mapItems(listed, (entry) => ({entry, final: rebase(entry.path, src.path, final)})), options)
  if (failures.length > 0) {
    const first = failures[0].error
    const summary = `${failures.length} of ${files} files failed; first: `
    throw first instanceof DiskError ? first.withContext(summary.slice(0, -2)) : new Error(summary + String(first))
  }

  return {source: src.path, destination: final, type: 'dir', files, bytes, serverSide: false}
}

/** One file to stream: the source entry and its exact destination path. */
export interface FileCopy {
  entry: Entry
  final: string
}

/**
 * Streams many files through the one transfer pool: links prepared ahead
 * (`checkers`), `transfers` at a time, each retried as copyFile does.
 * Destination parents must exist. Every file runs even when some fail; the
 * failures come back, each error saying its path.
 */
export async function copyFiles(
  src: Target,
  dst: Target,
  files: AsyncIterable<FileCopy> | Iterable<FileCopy>,
  options: TransferOptions,
  onDone?: (file: FileCopy) => void,
): Promise<Array<{item: FileCopy; error: unknown}>> {
  const ahead = prefetch(files, options.checkers ?? 8, (file) => prepareBoth(src, file.entry, dst, file.final, options))
  // A destination whose commit is local work only (fsync, rename) frees the
  // slot once a file's bytes are in: the next file's request overlaps that
  // commit. At most `transfers` commits are in flight; a failed one still
  // fails its file.
  const early = dst.adapter.localCommit === true
  const transfers = options.transfers ?? 4
  const failures = await runPool(
    ahead,
    transfers,
    ({item: file, prepared}, release) =>
      copyFile({...src, path: file.entry.path}, file.entry, dst, file.final, options, prepared, early ? release : undefined).then(
        () => onDone?.(file),
        (error: unknown) => {
          throw addContext(error, file.entry.path)
        },
      ),
    early ? transfers : 0,
  )
  return failures.map(({item, error}) => ({item: item.item, error}))
}

async function* mapItems<T, R>(items: AsyncIterable<T>, map: (item: T) => R): AsyncGenerator<R> {
  for await (const item of items) yield map(item)
}

interface PreparedPair {
  read?: Prepared
  write?: Prepared
}

/**
 * Asks both backends to resolve ahead what this file's transfer will need
 * (where they can). A side that cannot is left to do it in copyFile, which
 * then also reports its error.
 */
async function prepareBoth(src: Target, source: Entry, dst: Target, final: string, options: TransferOptions): Promise<PreparedPair> {
  const [read, write] = await Promise.all([
    src.adapter.prepareRead?.(source).catch(() => undefined),
    dst.adapter.prepareWrite?.(final, {size: source.size ?? undefined, overwrite: options.overwrite}).catch(() => undefined),
  ])
  return {read, write}
}

/**
 * Streams one file, retrying temporary failures and hash mismatches with a
 * fresh read each time. What was prepared ahead serves the first attempt
 * only: a retry resolves everything again (a failed link is dead).
 */
async function copyFile(
  src: Target,
  source: Entry,
  dst: Target,
  final: string,
  options: TransferOptions,
  prepared: PreparedPair = {},
  /** Called once the whole body has been read from the source (the destination may still be committing). */
  received?: () => void,
): Promise<Entry> {
  const progress = options.progress ?? silentProgress
  const retries = options.retries ?? 5
  for (let attempt = 0; ; attempt++) {
    let moved = 0
    let input: Readable | undefined
    try {
      const ahead = attempt === 0 ? prepared : {}
      const writeOptions = {
        size: source.size ?? undefined,
        overwrite: options.overwrite,
        expect: {md5: source.md5, sha256: source.sha256},
        prepared: ahead.write,
      }
      // A small file moves as one buffer: no streams, and the local backend's
      // synchronous calls instead of a dozen thread-pool round trips.
      const whole = src.adapter.readWhole && source.size !== null && source.size <= WHOLE_FILE_BYTES ? await src.adapter.readWhole(src.path, source) : undefined
      if (whole) {
        moved = whole.length
        progress.advance(whole.length)
        received?.()
        if (dst.adapter.writeWhole) return await dst.adapter.writeWhole(final, whole, writeOptions)
        return await dst.adapter.write(final, Readable.from(whole.length > 0 ? [whole] : [], {objectMode: false}), writeOptions)
      }

      if (dst.adapter.writeFrom && src.adapter.readInto && src.adapter.readsInto?.(source)) {
        // Parallel ranged reads written at their positions into the destination's temporary file.
        const reader = src.adapter
        return await dst.adapter.writeFrom(
          final,
          async (sink) => {
            const digests = await reader.readInto!(src.path, sink, {
              entry: source,
              onProgress: (bytes) => {
                moved += bytes
                progress.advance(bytes)
              },
            })
            received?.()
            return digests
          },
          writeOptions,
        )
      }

      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          moved += chunk.length
          progress.advance(chunk.length)
          callback(null, chunk)
        },
      })
      if (received) counter.once('end', received)

      const opening = src.adapter.openRead(src.path, {entry: source, prepared: ahead.read, recycled: dst.adapter.recyclesChunks === true, dropBehind: true})
      if (ahead.read) {
        // The source's link is resolved already: the destination gets ready while its data request is answered.
        const writing = dst.adapter.write(final, counter, writeOptions)
        writing.catch(() => {}) // Awaited below; an early failure must not count as unhandled meanwhile.
        try {
          input = await opening
        } catch (error) {
          counter.destroy()
          await writing.catch(() => {})
          throw error
        }

        pipeline(input, counter, () => {})
        return await writing
      }

      input = await opening
      const body = pipeline(input, counter, () => {})
      if (isSelfVerifying(input)) markSelfVerifying(body)
      return await dst.adapter.write(final, body, writeOptions)
    } catch (error) {
      progress.advance(-moved)
      const retryable = error instanceof TemporaryError || error instanceof IntegrityError
      if (!retryable || attempt >= retries) throw error
      const delay = backoffDelay(attempt + 1, error instanceof TemporaryError ? error : new TemporaryError(''), {
        retries,
        baseMs: options.retryBaseMs,
      })
      options.log?.(`retrying ${src.path} in ${delay} ms: ${(error as Error).message}`)
      await sleep(delay)
    } finally {
      input?.destroy()
    }
  }
}

// addContext lives beside DiskError, so that a command that only lists or stats need not load the transfer engine.
export {addContext}

