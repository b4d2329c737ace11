/**
 * Public links for the cluster (DESIGN.md §15): a file or folder is shared
 * as a torrent registered in a tracker's pool, and its link is the magnet.
 * The info dictionary depends only on the content, its name and the default
 * piece length, so unsharing re-creates it to learn the infohash and removes
 * that torrent from the pool.
 */
import type {StorageAdapter} from '../backends/adapter.js'
import {TemporaryError} from '../base/index.js'
import {httpGet, trackerBase} from './announce.js'
import {createTorrent} from './create.js'
import {publishTorrent} from './download.js'

export interface SharedTorrent {
  infoHash: string
  magnet: string
  /** Where the tracker serves the .torrent (GET), for `torrent seed` and any client. */
  torrentUrl: string
  size: number
}

export interface ShareOptions {
  onSize?: (bytes: number) => void
  onProgress?: (bytes: number) => void
  signal?: AbortSignal
}

/** Hashes PATH into a torrent announcing at TRACKER and registers it in the tracker's pool. */
export async function shareOnTracker(adapter: StorageAdapter, path: string, tracker: string, options: ShareOptions = {}): Promise<SharedTorrent> {
  const base = trackerBase(tracker)
  const {torrent, meta} = await createTorrent(adapter, path, {announce: [tracker], ...options})
  const published = await publishTorrent(tracker, torrent)
  return {infoHash: published.infoHash, magnet: published.magnet, torrentUrl: `${base}/torrents/${published.infoHash}.torrent`, size: meta.length}
}

/** Removes PATH's torrent from the tracker's pool; false when the pool did not hold it. */
export async function unshareOnTracker(adapter: StorageAdapter, path: string, tracker: string, options: ShareOptions = {}): Promise<{infoHash: string; removed: boolean}> {
  const base = trackerBase(tracker)
  const {meta} = await createTorrent(adapter, path, options)
  const {status, body} = await httpGet(`${base}/torrents/${meta.infoHashHex}.torrent`, {method: 'DELETE'})
  if (status === 204 || status === 200) return {infoHash: meta.infoHashHex, removed: true}
  if (status === 404) return {infoHash: meta.infoHashHex, removed: false}
  throw new TemporaryError(`cannot remove the torrent from ${base}: HTTP ${status} ${body.toString('utf8').slice(0, 200)}`)
}
