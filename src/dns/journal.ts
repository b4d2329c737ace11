/**
 * The update journal: one JSON line per accepted RFC 2136 update, appended
 * beside the zone file (`<zone file>.jnl`) and fsynced before the update is
 * answered. Loading a zone replays its journal in order. A torn last line
 * (a crash mid-write, never acknowledged) is cut off; a damaged line in the
 * middle stops the load, since what follows it may depend on it.
 */
import {closeSync, existsSync, fsyncSync, openSync, readFileSync, truncateSync} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'
import {dirname} from 'node:path'

import type {Zone, ZoneEdit} from './zone.js'

interface JournalLine {
  v: 1
  edits: ZoneEdit[]
}

export class Journal {
  private handle?: FileHandle

  constructor(readonly path: string) {}

  static besideZone(zoneFile: string): Journal {
    return new Journal(`${zoneFile}.jnl`)
  }

  /** Applies every recorded update to `zone`; returns how many there were. */
  replay(zone: Zone): number {
    if (!existsSync(this.path)) return 0
    const text = readFileSync(this.path, 'utf8')
    const complete = text.lastIndexOf('\n') + 1
    if (complete < text.length) truncateSync(this.path, Buffer.byteLength(text.slice(0, complete)))
    const lines = text.slice(0, complete).split('\n').filter(Boolean)
    lines.forEach((line, index) => {
      let parsed: JournalLine
      try {
        parsed = JSON.parse(line) as JournalLine
      } catch {
        throw new Error(`${this.path}:${index + 1}: damaged journal entry`)
      }
      applyEdits(zone, parsed.edits)
    })
    return lines.length
  }

  /** Appends one update and waits until it is on disk. */
  async append(edits: ZoneEdit[]): Promise<void> {
    if (!this.handle) {
      const created = !existsSync(this.path)
      this.handle = await open(this.path, 'a', 0o644)
      if (created) syncDirectory(dirname(this.path))
    }
    const line: JournalLine = {v: 1, edits}
    await this.handle.write(JSON.stringify(line) + '\n')
    await this.handle.sync()
  }

  async close(): Promise<void> {
    const handle = this.handle
    this.handle = undefined
    await handle?.close()
  }
}

/**
 * Applies one update's edits. If anything changed, the SOA serial goes up by
 * one, unless the update set a newer serial itself (RFC 2136 §3.6).
 */
export function applyEdits(zone: Zone, edits: ZoneEdit[]): boolean {
  let changed = false
  let serialSet = false
  for (const edit of edits) {
    const applied = zone.apply(edit)
    changed = applied || changed
    if (applied && edit.op === 'add' && edit.rr.type === 'SOA') serialSet = true
  }
  if (changed && !serialSet) zone.bumpSerial()
  return changed
}

/** Makes a new directory entry durable (POSIX: fsync the directory). */
function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the file itself is synced.
  }
}
