import type {Entry, StorageAdapter} from '../backends/adapter.js'
import {ConflictError, NotFoundError} from '../base/index.js'
import {joinPath, parentOf} from '../backends/remote-path.js'

/** Creates a directory and any missing parents; an existing directory is fine, an existing file is a ConflictError. */
export async function mkdirParents(adapter: StorageAdapter, path: string): Promise<void> {
  if (path === '/') return
  try {
    await adapter.mkdir(path)
  } catch (error) {
    if (error instanceof NotFoundError && error.kind === 'dir') {
      await mkdirParents(adapter, parentOf(path))
      await mkdirParents(adapter, path)
      return
    }

    if (!(error instanceof ConflictError)) throw error
    const existing = await adapter.stat(path)
    if (existing.type !== 'dir') {
      throw new ConflictError(`cannot create directory ${path}: a file exists there`, 'not-directory')
    }
  }
}

/** Makes sure `dir` exists as a directory, creating it and its parents as rclone does. One stat when it exists. */
export async function ensureDir(adapter: StorageAdapter, dir: string): Promise<void> {
  try {
    const entry = await adapter.stat(dir)
    if (entry.type === 'dir') return
    throw new ConflictError(`${dir} is a file, not a directory`, 'not-directory')
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error
  }

  await mkdirParents(adapter, dir)
}

/** Every entry below `dir`, depth first, each directory before its contents. */
export async function* walk(adapter: StorageAdapter, dir: string): AsyncGenerator<Entry> {
  const subdirs: Entry[] = []
  for await (const entry of adapter.list(dir)) {
    yield entry
    if (entry.type === 'dir') subdirs.push(entry)
  }

  for (const sub of subdirs) yield* walk(adapter, sub.path)
}

/** Maps a path under `fromRoot` to the same place under `toRoot`. */
export function rebase(path: string, fromRoot: string, toRoot: string): string {
  const rest = fromRoot === '/' ? path.slice(1) : path.slice(fromRoot.length + 1)
  return rest === '' ? toRoot : joinPath(toRoot, rest)
}
