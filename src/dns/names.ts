/**
 * Domain names as this module keeps them: lower case, no trailing dot, and
 * the root written '.' (dns-packet's own spelling, and the one it encodes
 * correctly; an empty string would be measured as two bytes).
 */

export const ROOT = '.'

/** Canonical form: lower case, no leading or trailing dot, '.' for the root. */
export function canonical(name: string): string {
  const trimmed = name.trim().replace(/^\.+|\.+$/g, '').toLowerCase()
  return trimmed === '' ? ROOT : trimmed
}

/** The name written the way dig prints it, with a trailing dot. */
export function fqdn(name: string): string {
  return name === ROOT ? '.' : `${name}.`
}

/** Number of labels ('.' has none). */
export function labelCount(name: string): number {
  return name === ROOT ? 0 : name.split('.').length
}

/** The name one label up, or undefined for the root. */
export function parentOf(name: string): string | undefined {
  if (name === ROOT) return undefined
  const dot = name.indexOf('.')
  return dot < 0 ? ROOT : name.slice(dot + 1)
}

/** True when `name` is `ancestor` or lies below it (both canonical). */
export function isAtOrBelow(name: string, ancestor: string): boolean {
  if (ancestor === ROOT || name === ancestor) return true
  return name.endsWith(`.${ancestor}`)
}

/**
 * The names from just below `ancestor` down to `name` inclusive, top first:
 * ('a.b.c', 'c') gives ['b.c', 'a.b.c'].
 */
export function namesBetween(name: string, ancestor: string): string[] {
  const out: string[] = []
  let current: string | undefined = name
  while (current !== undefined && current !== ancestor) {
    out.unshift(current)
    current = parentOf(current)
  }
  return out
}

/** Joins a possibly relative master-file name onto an origin. */
export function absolute(name: string, origin: string): string {
  if (name === '@') return origin
  if (name.endsWith('.') && !name.endsWith('\\.')) return canonical(name)
  return origin === ROOT ? canonical(name) : canonical(`${name}.${origin}`)
}
