/**
 * Revision trees with CouchDB's semantics, as pure functions (no I/O).
 *
 * A tree is a map from revision (`N-hash`) to its parent and deleted flag.
 * Leaves are revisions no other revision names as parent. The winner is the
 * leaf CouchDB and PouchDB both pick: a live leaf beats a deleted one, then
 * the higher generation wins, then the higher hash in ASCII order. Deleted
 * leaves win only when every leaf is deleted.
 */
import {createHash} from 'node:crypto'

export interface RevNode {
  /** Parent revision, or null for a root (or where history was cut). */
  p: string | null
  /** 1 when this revision is a deletion (a tombstone). */
  d: 0 | 1
}

export type RevTree = Record<string, RevNode>

export interface ParsedRev {
  gen: number
  hash: string
}

const REV = /^([1-9]\d{0,15})-([0-9a-zA-Z]{1,64})$/

export function parseRev(rev: unknown): ParsedRev | null {
  if (typeof rev !== 'string') return null
  const match = REV.exec(rev)
  return match ? {gen: Number(match[1]), hash: match[2]} : null
}

export function generation(rev: string): number {
  return Number(rev.slice(0, rev.indexOf('-')))
}

export function leaves(tree: RevTree): string[] {
  const parents = new Set<string>()
  for (const node of Object.values(tree)) if (node.p) parents.add(node.p)
  return Object.keys(tree).filter((rev) => !parents.has(rev))
}

/** CouchDB's order of leaves, best first. */
export function compareLeaves(tree: RevTree, a: string, b: string): number {
  const da = tree[a].d
  const db = tree[b].d
  if (da !== db) return da - db
  const ga = generation(a)
  const gb = generation(b)
  if (ga !== gb) return gb - ga
  const ha = a.slice(a.indexOf('-') + 1)
  const hb = b.slice(b.indexOf('-') + 1)
  return ha < hb ? 1 : ha > hb ? -1 : 0
}

/** Leaves sorted best first; the first is the winner. */
export function sortedLeaves(tree: RevTree): string[] {
  return leaves(tree).sort((a, b) => compareLeaves(tree, a, b))
}

export function winner(tree: RevTree): string {
  return sortedLeaves(tree)[0]
}

/** Live leaves other than the winner, in CouchDB's order: `_conflicts`. */
export function conflicts(tree: RevTree): string[] {
  return sortedLeaves(tree)
    .slice(1)
    .filter((rev) => tree[rev].d === 0)
}

/** `_revisions` for a revision: its generation and the hashes from it back to the root. */
export function revisions(tree: RevTree, rev: string): {start: number; ids: string[]} {
  const ids: string[] = []
  let at: string | null = rev
  while (at && ids.length < 1000) {
    ids.push(at.slice(at.indexOf('-') + 1))
    at = tree[at]?.p ?? null
  }
  return {start: generation(rev), ids}
}

/** The leaves descending from a revision (itself if it is a leaf). */
export function leavesFrom(tree: RevTree, rev: string): string[] {
  return leaves(tree).filter((leaf) => {
    let at: string | null = leaf
    while (at) {
      if (at === rev) return true
      at = tree[at]?.p ?? null
    }
    return false
  })
}

/**
 * Merges a revision path (leaf first, as `_revisions` lists it) into a tree,
 * the `new_edits:false` way. Returns the new tree and whether anything was
 * added; revisions already present keep their parents (idempotent).
 */
export function mergePath(tree: RevTree, path: string[], deleted: boolean): {tree: RevTree; added: boolean} {
  if (tree[path[0]]) return {tree, added: false}
  const out: RevTree = {...tree}
  for (let i = path.length - 1; i >= 0; i--) {
    const rev = path[i]
    if (out[rev]) continue
    out[rev] = {p: path[i + 1] ?? null, d: i === 0 && deleted ? 1 : 0}
  }
  return {tree: out, added: true}
}

/** A revision path from a document's `_rev` and optional `_revisions`. */
export function pathOf(rev: string, history: unknown): string[] | null {
  const parsed = parseRev(rev)
  if (!parsed) return null
  if (history === undefined) return [rev]
  const h = history as {start?: unknown; ids?: unknown}
  if (typeof h !== 'object' || h === null || h.start !== parsed.gen || !Array.isArray(h.ids) || h.ids[0] !== parsed.hash) return null
  const path: string[] = []
  for (let i = 0; i < h.ids.length && parsed.gen - i >= 1; i++) {
    const id = h.ids[i]
    if (typeof id !== 'string' || !/^[0-9a-zA-Z]{1,64}$/.test(id)) return null
    path.push(`${parsed.gen - i}-${id}`)
  }
  return path
}

/** Sorted-key JSON, so a revision hash depends on content, not key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** A new revision for an edit: the next generation, hashed from parent, deletion and body (deterministic, as CouchDB's). */
export function newRev(parent: string | null, deleted: boolean, body: Record<string, unknown>): string {
  const gen = parent ? generation(parent) + 1 : 1
  const hash = createHash('md5')
    .update(`${parent ?? ''}\n${deleted ? 1 : 0}\n${canonical(body)}`)
    .digest('hex')
  return `${gen}-${hash}`
}
