/**
 * `torrent get` and `torrent seed` as functions the commands call: resolve
 * the torrent (file, URL, magnet, or a name in our tracker's pool), set up
 * the store, run the swarm until done.
 */
import fs from 'node:fs/promises'

import type {StorageAdapter} from '../backends/adapter.js'
import {IntegrityError, NotFoundError, TemporaryError, UsageError} from '../base/index.js'
import {httpGet, trackerBase} from './announce.js'
import {type Metainfo, parseMagnet, parseTorrent} from './metainfo.js'
import {ContentSource, PartialContent, type SourceLocation, type TargetLocation} from './storage.js'
import {type PeerReport, type PieceStore, stallError, Swarm} from './swarm.js'

export interface ResolvedSource {
  infoHash: Buffer
  meta?: Metainfo
  name?: string
  trackers: string[]
  /** How the torrent was found, for messages. */
  from: 'file' | 'url' | 'magnet' | 'pool'
}

/** A `.torrent` path or URL, a magnet, or a name in the pool of `tracker`. */
/** GETs a .torrent over http(s): 404 is not found (exit 4), any other failure temporary. */
export async function fetchTorrentFile(url: string): Promise<Buffer> {
  const {status, body} = await httpGet(url)
  if (status === 404) throw new NotFoundError(`${url}: not found (HTTP 404)`, 'file')
  if (status !== 200) throw new TemporaryError(`${url}: HTTP ${status}`)
  return body
}

export async function resolveSource(source: string, trackers: string[]): Promise<ResolvedSource> {
  if (source.toLowerCase().startsWith('magnet:')) {
    const magnet = parseMagnet(source)
    return {infoHash: magnet.infoHash, name: magnet.name, trackers: dedupe([...magnet.trackers, ...trackers]), from: 'magnet'}
  }
  if (/^https?:\/\//i.test(source)) {
    const body = await fetchTorrentFile(source)
    const meta = parseTorrent(body)
    return {infoHash: meta.infoHash, meta, name: meta.name, trackers: dedupe([...meta.announce, ...trackers]), from: 'url'}
  }
  const data = await fs.readFile(source).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null
    if (error.code === 'EISDIR') throw new UsageError(`${source} is a folder, not a .torrent file`)
    throw error
  })
  if (data) {
    const meta = parseTorrent(data)
    return {infoHash: meta.infoHash, meta, name: meta.name, trackers: dedupe([...meta.announce, ...trackers]), from: 'file'}
  }
  if (source.endsWith('.torrent') || source.includes('/')) throw new NotFoundError(`${source}: no such file`, 'file')
  if (trackers.length === 0) throw new UsageError(`${source} is not a file, URL or magnet; to look it up by name, give --tracker`)
  return lookUpByName(source, trackers)
}

function dedupe(list: string[]): string[] {
  return [...new Set(list)]
}

/** `GET /torrents?name=` on each tracker until one knows the name, then its `.torrent`. */
async function lookUpByName(name: string, trackers: string[]): Promise<ResolvedSource> {
  const errors: string[] = []
  for (const tracker of trackers) {
    let base: string
    try {
      base = trackerBase(tracker)
    } catch {
      continue
    }
    try {
      const {status, body} = await httpGet(`${base}/torrents?name=${encodeURIComponent(name)}`)
      if (status !== 200) throw new TemporaryError(`HTTP ${status}`)
      const list = JSON.parse(body.toString('utf8')) as Array<{infoHash: string; name: string; seeders?: number}>
      const matches = list.filter((entry) => entry.name === name).sort((a, b) => (b.seeders ?? 0) - (a.seeders ?? 0))
      if (matches.length === 0) continue
      const file = await httpGet(`${base}/torrents/${matches[0].infoHash}.torrent`)
      if (file.status !== 200) throw new TemporaryError(`torrent file: HTTP ${file.status}`)
      const meta = parseTorrent(file.body)
      if (meta.infoHashHex !== matches[0].infoHash.toLowerCase()) throw new IntegrityError(`${base} served a torrent whose info-hash is not ${matches[0].infoHash}`)
      return {infoHash: meta.infoHash, meta, name: meta.name, trackers: dedupe([...trackers, ...meta.announce]), from: 'pool'}
    } catch (error) {
      errors.push(`${base}: ${(error as Error).message}`)
    }
  }
  if (errors.length > 0 && errors.length === trackers.length) throw new TemporaryError(`cannot look up "${name}": ${errors[0]}`)
  throw new NotFoundError(`no torrent named "${name}" in the pool of ${trackers.join(', ')}`, 'file')
}

export interface GetOptions {
  source: ResolvedSource
  target: TargetLocation
  host: string
  port: number
  /** Stop with exit 5 when no data has arrived for this long (ms); 0: wait forever. */
  timeoutMs: number
  peers?: string[]
  log: (line: string) => void
  verbose?: boolean
  onStart?: (info: {meta: Metainfo; resumedBytes: number}) => void
  onPiece?: (bytes: number) => void
  /** Stop here once complete (tests of resume). */
  signal?: AbortSignal
}

export interface GetResult {
  infoHash: string
  name: string
  path: string
  size: number
  /** Piece bytes received from peers this run. */
  fetched: number
  /** Bytes of verified pieces found from an earlier run. */
  resumed: number
  /** Received bytes thrown away (failed hash checks, duplicates). */
  wasted: number
  seconds: number
  peers: PeerReport[]
  banned: Array<{host: string; reason: string}>
}

/** Downloads until complete; rejects TimeoutError (exit 5) when no peer supplies data in time. Returns the swarm still running. */
export async function getTorrent(options: GetOptions): Promise<{result: GetResult; swarm: Swarm}> {
  const started = Date.now()
  let partial: PartialContent | undefined
  const swarm = new Swarm({
    infoHash: options.source.infoHash,
    meta: options.source.meta,
    trackers: options.source.trackers,
    host: options.host,
    port: options.port,
    peers: options.peers,
    log: options.log,
    verbose: options.verbose,
    openStore: async (meta) => {
      partial = await PartialContent.open(meta, options.target)
      options.onStart?.({meta, resumedBytes: partial.resumedBytes})
      return partial satisfies PieceStore
    },
  })
  swarm.on('piece', (_index, bytes) => options.onPiece?.(bytes))
  try {
    await swarm.start()
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (options.timeoutMs > 0 && Date.now() - swarm.lastProgress > options.timeoutMs) {
          reject(stallError(swarm, options.source.name ?? options.source.infoHash.toString('hex'), options.timeoutMs))
        }
      }, 100)
      const done = (error?: Error): void => {
        clearInterval(timer)
        options.signal?.removeEventListener('abort', onAbort)
        if (error) reject(error)
        else resolve()
      }
      const onAbort = (): void =>
        done(new TemporaryError(partial ? `interrupted; the verified pieces are kept in ${partial.partDir} for the next run` : 'interrupted'))
      options.signal?.addEventListener('abort', onAbort)
      swarm.once('complete', () => done())
      swarm.once('error', (error) => done(error))
      if (swarm.complete) done()
    })
    const meta = swarm.meta!
    const path = await partial!.finish()
    // From here on, seeding reads the finished content where it now lies.
    const location: SourceLocation = partial!.target.adapter
      ? {adapter: partial!.target.adapter, path: partial!.finalPath}
      : {path: partial!.finalPath}
    swarm.replaceStore(asSeedStore(new ContentSource(meta, location)))
    return {
      swarm,
      result: {
        infoHash: meta.infoHashHex,
        name: meta.name,
        path,
        size: meta.length,
        fetched: swarm.fetched,
        resumed: partial!.resumedBytes,
        wasted: swarm.wasted,
        seconds: (Date.now() - started) / 1000,
        peers: swarm.peerReports(),
        banned: swarm.bannedPeers,
      },
    }
  } catch (error) {
    await partial?.suspend().catch(() => {})
    await swarm.stop()
    throw error
  }
}

function asSeedStore(source: ContentSource): PieceStore {
  return {has: () => true, read: (offset, length) => source.read(offset, length)}
}

export interface SeedOptions {
  meta: Metainfo
  data: SourceLocation
  shown: string
  host: string
  port: number
  trackers: string[]
  peers?: string[]
  log: (line: string) => void
  verbose?: boolean
  onVerify?: (bytes: number) => void
  maxAnnounceMs?: number
  uploadLimit?: number
  /** Aborts the hash check (SIGINT/SIGTERM before serving starts). */
  signal?: AbortSignal
}

/** Checks the data against every piece hash, then serves it. */
export async function startSeed(options: SeedOptions): Promise<{swarm: Swarm; source: ContentSource}> {
  const source = await ContentSource.open(options.meta, options.data)
  try {
    const bad = await source.verify(
      (index) => options.onVerify?.(Math.min(options.meta.pieceLength, options.meta.length - index * options.meta.pieceLength)),
      options.signal,
    )
    if (bad.length > 0) {
      throw new IntegrityError(
        `${options.shown} does not match the torrent: ${bad.length} of ${options.meta.pieces.length} pieces differ (first: piece ${bad[0]})`,
      )
    }
  } catch (error) {
    await source.close()
    throw error
  }
  const swarm = new Swarm({
    infoHash: options.meta.infoHash,
    meta: options.meta,
    trackers: options.trackers,
    host: options.host,
    port: options.port,
    peers: options.peers,
    log: options.log,
    verbose: options.verbose,
    maxAnnounceMs: options.maxAnnounceMs,
    uploadLimit: options.uploadLimit,
    openStore: async () => asSeedStore(source),
  })
  await swarm.start()
  return {swarm, source}
}

/** Registers a torrent in our tracker's pool (`PUT /torrents`). */
export async function publishTorrent(tracker: string, torrent: Buffer): Promise<{infoHash: string; name: string; magnet: string}> {
  const base = trackerBase(tracker)
  const {status, body} = await httpGet(`${base}/torrents`, {method: 'PUT', body: torrent})
  if (status !== 200 && status !== 201) throw new TemporaryError(`cannot publish to ${base}: HTTP ${status} ${body.toString('utf8').slice(0, 200)}`)
  return JSON.parse(body.toString('utf8')) as {infoHash: string; name: string; magnet: string}
}

export type {StorageAdapter}
