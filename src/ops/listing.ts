import type {Entry} from '../backends/adapter.js'
import {addContext, ConflictError, NotFoundError} from '../base/index.js'
import type {Target} from './session.js'

/** A whole tree, keyed by the path relative to its root (`a/b.txt`). */
export interface TreeListing {
  files: Map<string, Entry>
  dirs: Map<string, Entry>
}

export interface ListTreeOptions {
  /** Directories listed at once (rclone's --checkers). Default 8. */
  concurrency?: number
  /** Levels below the root to list: 1 = the root's own entries. Default: all. */
  levels?: number
  /** A missing root lists as empty instead of failing (a sync destination that does not exist yet). */
  missingIsEmpty?: boolean
}

/** The path of `entry` below `root`, without a leading slash. */
export function relativePath(path: string, root: string): string {
  return root === '/' ? path.slice(1) : path.slice(root.length + 1)
}

/**
 * Lists every entry below a directory, `concurrency` directories at a time.
 * A root that is a file lists as that one file (key: its name).
 */
export async function listTree(target: Target, options: ListTreeOptions = {}): Promise<TreeListing> {
  const listing: TreeListing = {files: new Map(), dirs: new Map()}
  if (target.adapter.listRecursive && options.levels === undefined) {
    try {
      const cut = target.path === '/' ? 1 : target.path.length + 1
      for await (const page of target.adapter.listRecursive(target.path)) {
        for (const entry of page) (entry.type === 'dir' ? listing.dirs : listing.files).set(entry.path.slice(cut), entry)
      }

      return listing
    } catch (error) {
      return fallBack(target, listing, error, options)
    }
  }

  const maxLevels = options.levels ?? Number.POSITIVE_INFINITY
  const pending: Array<{dir: string; level: number}> = [{dir: target.path, level: 1}]
  let running = 0
  let failure: unknown
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (failure === undefined && running < Math.max(1, options.concurrency ?? 8) && pending.length > 0) {
        const {dir, level} = pending.shift()!
        running++
        listOne(dir, level)
          .catch((error: unknown) => {
            failure ??= error
          })
          .finally(() => {
            running--
            pump()
          })
      }

      if (running === 0 && (pending.length === 0 || failure !== undefined)) resolve()
    }

    const listOne = async (dir: string, level: number) => {
      for await (const entry of target.adapter.list(dir)) {
        const key = relativePath(entry.path, target.path)
        if (entry.type === 'dir') {
          listing.dirs.set(key, entry)
          if (level < maxLevels) pending.push({dir: entry.path, level: level + 1})
        } else {
          listing.files.set(key, entry)
        }
      }
    }

    pump()
  })
  if (failure === undefined) return listing
  return fallBack(target, listing, failure, options)
}

/** A listing that failed: a root that is a file lists as itself, a missing root (when allowed) as nothing. */
async function fallBack(target: Target, listing: TreeListing, failure: unknown, options: ListTreeOptions): Promise<TreeListing> {
  if (failure instanceof ConflictError && failure.reason === 'not-directory') {
    const entry = await target.adapter.stat(target.path)
    listing.files.set(entry.name, entry)
    return listing
  }

  if (options.missingIsEmpty && failure instanceof NotFoundError) {
    const exists = await target.adapter.stat(target.path).then(
      () => true,
      () => false,
    )
    if (!exists) return listing
  }

  throw addContext(failure, `cannot list ${target.path}`)
}
