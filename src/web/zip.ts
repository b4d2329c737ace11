import type {ServerResponse} from 'node:http'
import {pipeline} from 'node:stream'

import type {Entry} from '../backends/adapter.js'
import type {Target} from '../ops/session.js'
import {walk} from '../ops/tree.js'
import {contentDisposition} from './http.js'

/**
 * Streams a directory as a zip (yazl, loaded only here). Files are stored,
 * not deflated, so the zip moves at disk speed; each file is opened only when
 * the zip reaches it, so one file's stream is open at a time.
 */
export async function streamZip(target: Target, dir: Entry, res: ServerResponse): Promise<void> {
  const {ZipFile} = await import('yazl')
  const zip = new ZipFile()
  const root = dir.name || 'root'
  res.writeHead(200, {'Content-Type': 'application/zip', 'Content-Disposition': contentDisposition(`${root}.zip`), 'Cache-Control': 'no-store'})
  zip.on('error', () => res.destroy())
  pipeline(zip.outputStream, res, (error) => {
    if (error) res.destroy()
  })
  const prefix = target.path === '/' ? 1 : target.path.length + 1
  try {
    for await (const entry of walk(target.adapter, target.path)) {
      const name = `${root}/${entry.path.slice(prefix)}`
      const mtime = entry.modified ? new Date(entry.modified) : new Date()
      if (entry.type === 'dir') {
        zip.addEmptyDirectory(name, {mtime})
        continue
      }

      zip.addReadStreamLazy(name, {mtime, compress: false, ...(entry.size === null ? {} : {size: entry.size})}, (callback) => {
        target.adapter.openRead(entry.path, {entry}).then((stream) => callback(null, stream), (error: unknown) => callback(error, undefined as never))
      })
    }
  } catch (error) {
    res.destroy(error as Error)
    return
  }

  zip.end()
}
