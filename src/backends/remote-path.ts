import path from 'node:path'

import {UsageError} from './errors.js'

export const BACKEND_NAMES = ['yandex', 'local', 'cluster', 's3', 'webdav'] as const
export type BackendName = (typeof BACKEND_NAMES)[number]

export function isBackendName(value: string): value is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(value)
}

/** A path as the user wrote it, split into an optional backend prefix and a normalised absolute path. */
export interface RemotePath {
  backend?: BackendName
  /** Normalised absolute path, `/` or `/a/b` with no trailing slash. */
  path: string
}

/**
 * Parses `/a/b`, `yandex:/a/b`, `cluster:/a` or `local:/a`. Paths must be
 * absolute; `.` and `..` are resolved, and a `..` that climbs above the root
 * is a UsageError, so no path can escape a backend's root.
 */
export function parseRemotePath(input: string): RemotePath {
  const match = /^([a-z][a-z0-9]*):(.*)$/.exec(input)
  let backend: BackendName | undefined
  let rest = input
  if (match) {
    if (!isBackendName(match[1])) {
      throw new UsageError(`unknown backend prefix "${match[1]}:" in ${input}; use one of ${BACKEND_NAMES.join(', ')}`)
    }

    backend = match[1]
    rest = match[2] === '' ? '/' : match[2]
  }

  return {backend, path: normalizePath(rest, input)}
}

/** Normalises an absolute path; see parseRemotePath. */
export function normalizePath(input: string, shownAs = input): string {
  if (!input.startsWith('/')) {
    throw new UsageError(`path must be absolute (start with /): ${shownAs}`)
  }

  if (input.includes('\0')) throw new UsageError(`path contains a NUL byte: ${JSON.stringify(shownAs)}`)
  const parts: string[] = []
  for (const part of input.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (parts.length === 0) throw new UsageError(`path climbs above the root: ${shownAs}`)
      parts.pop()
      continue
    }

    parts.push(part)
  }

  return '/' + parts.join('/')
}

/** `/a/b` → `/a`; `/a` → `/`; `/` → `/`. */
export function parentOf(p: string): string {
  return path.posix.dirname(p)
}

/** `/a/b` → `b`; `/` → ``. */
export function baseName(p: string): string {
  return p === '/' ? '' : path.posix.basename(p)
}

/** Joins a normalised directory and a single name. */
export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}

/** True when `inner` is `outer` or below it. */
export function isWithin(inner: string, outer: string): boolean {
  return outer === '/' || inner === outer || inner.startsWith(outer + '/')
}
