import {UsageError} from '../base/index.js'
import type {BackendName} from '../backends/remote-path.js'
import type {Session, Target} from '../ops/session.js'

/**
 * Resolves a path from a request (`/a/b` or `local:/a/b`). A `..` segment is
 * refused outright, whether it came encoded (`%2e%2e`) or not: the API never
 * climbs, even where the result would stay inside the backend's root.
 */
export async function resolveTarget(session: Session, input: string | null | undefined): Promise<Target> {
  if (input === null || input === undefined || input === '') throw new UsageError('missing "path"')
  const rest = input.replace(/^[a-z]+:/, '')
  if (rest.split(/[/\\]/).includes('..')) throw new UsageError(`path must not contain "..": ${input}`)
  return session.remote(input)
}

/** The path as the user writes it: with its backend prefix unless on the default backend (DESIGN.md §13's `data-path`). */
export function shownPath(backend: BackendName | 'host', path: string, defaultBackend: BackendName): string {
  return backend === defaultBackend || backend === 'host' ? path : `${backend}:${path}`
}
