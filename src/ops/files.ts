import type {Entry} from '../backends/adapter.js'
import {addContext, ConflictError, NotFoundError} from '../base/index.js'
import type {Target} from './session.js'
import {mkdirParents} from './tree.js'

/** Lists a directory; a file lists as itself (as `ls` does). */
export async function listPath(target: Target): Promise<Entry[]> {
  const entries: Entry[] = []
  try {
    for await (const entry of target.adapter.list(target.path)) entries.push(entry)
  } catch (error) {
    if (error instanceof ConflictError && error.reason === 'not-directory') return [await statPath(target)]
    throw addContext(error, `cannot list ${target.path}`)
  }

  return entries.sort((a, b) => a.name.localeCompare(b.name))
}

export async function statPath(target: Target): Promise<Entry> {
  return target.adapter.stat(target.path).catch((error) => {
    throw addContext(error, `cannot stat ${target.path}`)
  })
}

/** mkdir; with `parents`, missing parents are created and an existing directory is fine. */
export async function makeDirectory(target: Target, parents: boolean): Promise<Entry> {
  const context = `cannot create directory ${target.path}`
  try {
    if (parents) {
      await mkdirParents(target.adapter, target.path)
      return await target.adapter.stat(target.path)
    }

    return await target.adapter.mkdir(target.path)
  } catch (error) {
    if (error instanceof ConflictError && !parents) {
      throw new ConflictError(`${context}: already exists`, 'exists', {hint: 'use -p to accept an existing directory'})
    }

    if (error instanceof NotFoundError && !parents) {
      throw new NotFoundError(`${context}: parent directory not found`, 'dir', {hint: 'use -p to create parents'})
    }

    throw addContext(error, context)
  }
}

export async function removePath(target: Target, options: {recursive: boolean; permanently: boolean}): Promise<void> {
  await target.adapter.remove(target.path, options).catch((error) => {
    throw addContext(error, `cannot remove ${target.path}`)
  })
}
