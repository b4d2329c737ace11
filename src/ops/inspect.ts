import {once} from 'node:events'
import type {Readable} from 'node:stream'

import type {Entry} from '../backends/adapter.js'
import {addContext, UsageError} from '../base/index.js'
import {type ByteRange, sliceStream} from '../backends/range.js'
import {listTree} from './listing.js'
import type {Target} from './session.js'

/**
 * Writes a file's bytes, or the range `offset`..`offset+count`, to `out`:
 * a ranged read where the backend has one (a local seek, an HTTP Range),
 * else the stream cut here, stopped as soon as the range is out.
 */
export async function catFile(target: Target, range: ByteRange | undefined, out: NodeJS.WritableStream): Promise<number> {
  if (range && (range.offset < 0 || (range.count !== undefined && range.count < 0))) {
    throw new UsageError('--offset and --count must not be negative')
  }

  const context = `cannot read ${target.path}`
  let written = 0
  try {
    const entry = await target.adapter.stat(target.path)
    if (entry.type === 'dir') throw new UsageError(`${context}: is a directory`)
    const wanted = range && (range.offset > 0 || range.count !== undefined) ? range : undefined
    if (wanted && entry.size !== null && wanted.offset >= entry.size) return 0
    if (wanted?.count === 0) return 0
    const input = await target.adapter.openRead(target.path, {entry, range: target.adapter.ranged ? wanted : undefined})
    const body: Readable = wanted && !target.adapter.ranged ? input.pipe(sliceStream(wanted)) : input
    try {
      for await (const chunk of body) {
        written += (chunk as Buffer).length
        if (!out.write(chunk as Buffer)) await once(out, 'drain')
      }
    } finally {
      input.destroy()
    }
  } catch (error) {
    throw addContext(error, context)
  }

  return written
}

/** `size`: files and bytes below a path (a file counts as itself). */
export async function sizeOf(target: Target): Promise<{files: number; bytes: number}> {
  const tree = await listTree(target)
  let bytes = 0
  for (const entry of tree.files.values()) bytes += entry.size ?? 0
  return {files: tree.files.size, bytes}
}

export interface TreeNode {
  entry: Entry
  children?: TreeNode[]
}

/** `tree`: the entries below a path, `levels` deep (1: direct children only), as nested nodes sorted by name. */
export async function treeOf(target: Target, levels?: number): Promise<TreeNode[]> {
  const listing = await listTree(target, {levels})
  const nodes = new Map<string, TreeNode>()
  const roots: TreeNode[] = []
  const keys = [...listing.dirs.keys(), ...listing.files.keys()].sort()
  for (const key of keys) {
    const entry = listing.dirs.get(key) ?? listing.files.get(key)!
    const node: TreeNode = entry.type === 'dir' ? {entry, children: []} : {entry}
    nodes.set(key, node)
    const slash = key.lastIndexOf('/')
    const parent = slash === -1 ? undefined : nodes.get(key.slice(0, slash))
    ;(parent?.children ?? roots).push(node)
  }

  return roots
}

/** Draws nodes as `tree` does, with ├── └── and │ guides; directories end in /. */
export function drawTree(root: string, nodes: TreeNode[]): string {
  const lines = [root]
  const draw = (list: TreeNode[], prefix: string) => {
    list.forEach((node, i) => {
      const last = i === list.length - 1
      lines.push(`${prefix}${last ? '└── ' : '├── '}${node.entry.name}${node.entry.type === 'dir' ? '/' : ''}`)
      if (node.children) draw(node.children, prefix + (last ? '    ' : '│   '))
    })
  }

  draw(nodes, '')
  return lines.join('\n')
}
