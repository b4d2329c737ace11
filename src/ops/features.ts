import type {StorageAdapter, Trash} from '../backends/adapter.js'
import {addContext, UsageError} from '../base/index.js'
import type {Target} from './session.js'

/** The optional features of DESIGN.md §15 a backend may lack: using one it lacks is a usage error (exit 2) saying so. */
function lacking(adapter: StorageAdapter, what: string): UsageError {
  return new UsageError(`the ${adapter.name} backend has no ${what}`, {hint: 'use a yandex: path'})
}

export async function share(target: Target): Promise<string> {
  if (!target.adapter.publish) throw lacking(target.adapter, 'public links')
  return target.adapter.publish(target.path).catch((error) => {
    throw addContext(error, `cannot share ${target.path}`)
  })
}

export async function unshare(target: Target): Promise<void> {
  if (!target.adapter.unpublish) throw lacking(target.adapter, 'public links')
  await target.adapter.unpublish(target.path).catch((error) => {
    throw addContext(error, `cannot unshare ${target.path}`)
  })
}

export function trashOf(adapter: StorageAdapter): Trash {
  if (!adapter.trash) throw lacking(adapter, 'trash')
  return adapter.trash
}

export async function fetchUrl(url: string, target: Target): Promise<void> {
  if (!target.adapter.fetchUrl) throw lacking(target.adapter, 'upload from a URL (it cannot fetch by itself)')
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UsageError(`not a URL: ${url}`)
  }

  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`only http and https URLs can be fetched: ${url}`)
  await target.adapter.fetchUrl(url, target.path).catch((error) => {
    throw addContext(error, `cannot upload ${url} to ${target.path}`)
  })
}
