import {randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

import {isWithin} from '../backends/remote-path.js'

/** Dead properties by path, then by `{ns}local`, each value a serialised XML fragment. */
type Table = Record<string, Record<string, string>>

/**
 * Dead properties (PROPPATCH) in a sidecar JSON file beside the server,
 * whatever the backend: the cluster and Yandex have nowhere to keep them.
 * Every change is written whole to a temporary file and renamed into place,
 * one at a time, so the file is always complete.
 */
export class PropStore {
  private table: Table = {}
  private writing: Promise<void> = Promise.resolve()

  constructor(readonly file: string) {}

  async load(): Promise<void> {
    try {
      const parsed = JSON.parse(await fs.readFile(this.file, 'utf8')) as unknown
      if (parsed && typeof parsed === 'object') this.table = parsed as Table
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }

  get(p: string): Record<string, string> {
    return this.table[p] ?? {}
  }

  /** Applies sets (a value) and removes (undefined) to one path, all or nothing. */
  async update(p: string, changes: Array<[string, string | undefined]>): Promise<void> {
    const props = {...this.get(p)}
    for (const [key, value] of changes) {
      if (value === undefined) delete props[key]
      else props[key] = value
    }

    if (Object.keys(props).length === 0) delete this.table[p]
    else this.table[p] = props
    await this.save()
  }

  /** Copies the properties of `src` and everything below it to `dst`. */
  async copy(src: string, dst: string, move = false): Promise<void> {
    this.dropWithin(dst, false)
    for (const key of Object.keys(this.table)) {
      if (!isWithin(key, src)) continue
      this.table[dst + key.slice(src.length)] = {...this.table[key]}
      if (move) delete this.table[key]
    }

    await this.save()
  }

  async remove(p: string): Promise<void> {
    if (this.dropWithin(p, true)) await this.save()
  }

  private dropWithin(p: string, report: boolean): boolean {
    let dropped = false
    for (const key of Object.keys(this.table)) {
      if (isWithin(key, p)) {
        delete this.table[key]
        dropped = true
      }
    }

    return report && dropped
  }

  private save(): Promise<void> {
    const text = JSON.stringify(this.table)
    const next = this.writing.then(async () => {
      await fs.mkdir(path.dirname(this.file), {recursive: true})
      const temp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`
      await fs.writeFile(temp, text)
      await fs.rename(temp, this.file)
    })
    // One failed write does not block the next.
    this.writing = next.catch(() => {})
    return next
  }
}
