/**
 * The tracker's torrent pool: .torrent files registered with PUT /torrents,
 * and the completion counters, kept in memory and (with a data dir) on disk:
 * `torrents/<infohash>.torrent` and `completed.json`, each written to a
 * temporary file and renamed, so a crash leaves the old or the new version.
 */
import {mkdir, readdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {encodeTorrent, type Metainfo, parseTorrent} from '../metainfo.js'

export interface PoolEntry {
  meta: Metainfo
  /** The .torrent as served by GET /torrents/<infohash>.torrent. */
  torrent: Buffer
}

let sequence = 0

async function writeAtomic(file: string, data: Buffer | string): Promise<void> {
  const temporary = `${file}.${process.pid}.${++sequence}.tmp`
  await writeFile(temporary, data)
  await rename(temporary, file)
}

export class TorrentPool {
  private readonly entries = new Map<string, PoolEntry>()
  private saving: Promise<void> = Promise.resolve()

  /** @param dataDir where the pool lives; undefined keeps it in memory only. */
  constructor(
    private readonly dataDir: string | undefined,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /** Loads the stored torrents and returns the stored completion counters. */
  async load(): Promise<Record<string, number>> {
    if (!this.dataDir) return {}
    const dir = path.join(this.dataDir, 'torrents')
    await mkdir(dir, {recursive: true})
    for (const name of await readdir(dir)) {
      if (!/^[0-9a-f]{40}\.torrent$/.test(name)) continue
      try {
        const torrent = await readFile(path.join(dir, name))
        const meta = parseTorrent(torrent)
        this.entries.set(meta.infoHashHex, {meta, torrent})
      } catch (error) {
        this.log(`skipping ${name}: ${(error as Error).message}`)
      }
    }
    try {
      const counts = JSON.parse(await readFile(path.join(this.dataDir, 'completed.json'), 'utf8')) as unknown
      if (typeof counts !== 'object' || counts === null) return {}
      return Object.fromEntries(
        Object.entries(counts).filter(([hex, n]) => /^[0-9a-f]{40}$/.test(hex) && Number.isSafeInteger(n) && (n as number) >= 0),
      ) as Record<string, number>
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.log(`ignoring completed.json: ${(error as Error).message}`)
      return {}
    }
  }

  /**
   * Registers a .torrent (throws TorrentFormatError when malformed). One
   * without trackers gets `announce` added, so a client that fetches it from
   * the pool knows where to announce; the info dictionary stays as it was.
   */
  async add(data: Buffer, announce: string): Promise<PoolEntry> {
    let meta = parseTorrent(data)
    let torrent = data
    if (meta.announce.length === 0) {
      torrent = encodeTorrent(meta.info, [announce])
      meta = parseTorrent(torrent)
    }
    const entry = {meta, torrent}
    this.entries.set(meta.infoHashHex, entry)
    if (this.dataDir) await writeAtomic(path.join(this.dataDir, 'torrents', `${meta.infoHashHex}.torrent`), torrent)
    return entry
  }

  /** Removes a torrent from the pool (and its file); false when it was not there. */
  async remove(infoHashHex: string): Promise<boolean> {
    if (!this.entries.delete(infoHashHex)) return false
    if (this.dataDir) await rm(path.join(this.dataDir, 'torrents', `${infoHashHex}.torrent`), {force: true})
    return true
  }

  get(infoHashHex: string): PoolEntry | undefined {
    return this.entries.get(infoHashHex)
  }

  list(name?: string): PoolEntry[] {
    const all = [...this.entries.values()]
    return name === undefined ? all : all.filter((entry) => entry.meta.name === name)
  }

  /** Stores the completion counters; calls are serialised, the last one wins. */
  saveCompletions(counts: Record<string, number>): Promise<void> {
    const dataDir = this.dataDir
    if (!dataDir) return Promise.resolve()
    const json = JSON.stringify(counts)
    this.saving = this.saving
      .then(() => writeAtomic(path.join(dataDir, 'completed.json'), json))
      .catch((error: Error) => this.log(`cannot save completed.json: ${error.message}`))
    return this.saving
  }
}
