import type {About, Entry} from '../backends/adapter.js'
import {formatBytes} from '../ops/progress.js'

/** `ls` output: names (directories end in /), or with `long` a type, size, time and name per line. */
export function formatEntries(entries: Entry[], long: boolean): string {
  if (!long) return entries.map((e) => (e.type === 'dir' ? `${e.name}/` : e.name)).join('\n')
  const sizes = entries.map((e) => (e.size === null ? '-' : String(e.size)))
  const width = Math.max(1, ...sizes.map((s) => s.length))
  return entries
    .map((e, i) => {
      const time = e.modified ? e.modified.replace('T', ' ').slice(0, 19) : '-'.padEnd(19)
      return `${e.type === 'dir' ? 'd' : '-'}  ${sizes[i].padStart(width)}  ${time}  ${e.type === 'dir' ? `${e.name}/` : e.name}`
    })
    .join('\n')
}

export function formatEntry(entry: Entry): string {
  const lines = [
    `path:     ${entry.path}`,
    `type:     ${entry.type}`,
    `size:     ${entry.size === null ? '-' : `${entry.size} (${formatBytes(entry.size)})`}`,
    `modified: ${entry.modified ?? '-'}`,
  ]
  if (entry.md5) lines.push(`md5:      ${entry.md5}`)
  if (entry.sha256) lines.push(`sha256:   ${entry.sha256}`)
  return lines.join('\n')
}

export function formatAbout(about: About): string {
  return Object.entries(about)
    .map(([key, value]) => {
      const shown = value === null ? 'unknown' : ['pieces'].includes(key) ? String(value) : `${formatBytes(value)} (${value})`
      return `${(key + ':').padEnd(13)}${shown}`
    })
    .join('\n')
}
