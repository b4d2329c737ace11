import type {Readable} from 'node:stream'

import type {About, Entry, FileSink, HashName, ReadOptions, RemoveOptions, StorageAdapter, TransferOptions, WriteOptions} from '../adapter.js'
import {NotFoundError, UsageError} from '../errors.js'
import {verifyDigests} from '../hashing.js'
import {pieceHasher} from './hasher.js'
import {UploadIntent} from './intents.js'
import {encodeManifest, type Manifest, manifestKey, pieceLength, pieceSizeFor} from './manifest.js'
import {META_DB, MetaTree} from './meta.js'
import {downloadPieces, downloadPiecesInto, uploadPieces} from './pieces.js'
import type {ClusterStore} from './store.js'

export interface ClusterBackendOptions {
  pieceSize?: number
  /** Stops embedded servers, if this backend started them. */
  onClose?: () => Promise<void>
}

/** Uploads of at least this many bytes (when known) start the hashing worker at once. */
const WARM_HASHER_FROM = 8 << 20

/**
 * The cluster backend: files are manifests of content-addressed pieces,
 * the directory tree is compare-and-set metadata, both on our own router.
 */
export class ClusterBackend implements StorageAdapter {
  readonly name = 'cluster'
  /** Uploads hand each source chunk back once its piece is stored (pieces.ts). */
  readonly recyclesChunks = true
  readonly hashes = ['sha256'] as const
  readonly tree: MetaTree

  constructor(
    readonly store: ClusterStore,
    private readonly options: ClusterBackendOptions = {},
  ) {
    this.tree = new MetaTree(store)
  }

  async *list(dir: string): AsyncIterable<Entry> {
    yield* await this.tree.list(dir)
  }

  /** Every entry below `dir`, each directory read by id (rclone's ListR), as one page. */
  async *listRecursive(dir: string): AsyncIterable<Entry[]> {
    yield await this.tree.listRecursive(dir)
  }

  stat(path: string): Promise<Entry> {
    return this.tree.stat(path)
  }

  mkdir(path: string): Promise<Entry> {
    return this.tree.mkdir(path)
  }

  remove(path: string, options: RemoveOptions = {}): Promise<void> {
    return this.tree.remove(path, Boolean(options.recursive))
  }

  async manifestOf(path: string): Promise<Manifest> {
    const record = await this.tree.lookup(path).catch(() => null)
    if (!record) throw new NotFoundError(`${path}: file not found`, 'file')
    if (record.type === 'dir') throw new UsageError(`${path}: is a directory`)
    const bytes = await this.store.get(META_DB, manifestKey(record.manifest))
    if (!bytes) throw new NotFoundError(`${path}: its manifest ${record.manifest} is missing`, 'file')
    return JSON.parse(bytes.toString('utf8')) as Manifest
  }

  async openRead(path: string): Promise<Readable> {
    return downloadPieces(this.store, await this.manifestOf(path), `cannot read ${path}`)
  }

  /** Every file goes to a local file by readInto. */
  readsInto(entry: Entry): boolean {
    return entry.type === 'file'
  }

  /**
   * A file straight into a local file (a download's temporary file): no
   * stream in between, each slice written right after its whole-file hash
   * (pieces.ts); every piece and the whole file verified.
   */
  async readInto(path: string, sink: FileSink, options: ReadOptions & {onProgress?: (bytes: number) => void} = {}): Promise<Partial<Record<HashName, string>>> {
    const what = `cannot read ${path}`
    const sha256 = await downloadPiecesInto(this.store, await this.manifestOf(path), sink, what, {onProgress: options.onProgress, signal: options.signal})
    return {sha256}
  }

  /**
   * Pieces first, then the manifest, then one CAS that links the file: until
   * that CAS nothing is visible, so an interrupted upload leaves only
   * unreferenced pieces for gc.
   */
  async write(path: string, source: Readable, options: WriteOptions = {}): Promise<Entry> {
    // A large file's pieces are hashed on the worker: it boots while the
    // path is checked, not while the first pieces wait (95-213 ms at load 10).
    if ((options.size ?? 0) >= WARM_HASHER_FROM) pieceHasher.warm()
    await this.tree.checkWritable(path, Boolean(options.overwrite))
    const intent = new UploadIntent(this.store)
    try {
      const manifest = await uploadPieces(this.store, intent, source, {
        onProgress: options.onProgress,
        pieceSize: this.options.pieceSize ?? pieceSizeFor(options.size),
        size: options.size,
      })
      verifyDigests(`cannot write ${path}`, manifest, options.expect)
      const {stored: _stored, reused: _reused, ...content} = manifest
      const {id, bytes} = encodeManifest(content)
      await intent.add([], id)
      await this.store.set(META_DB, manifestKey(id), bytes)
      return await this.tree.linkFile(
        path,
        {type: 'file', size: content.size, sha256: content.sha256, manifest: id, modified: new Date().toISOString()},
        Boolean(options.overwrite),
      )
    } finally {
      await intent.finish().catch(() => {})
    }
  }

  copy(src: string, dst: string, options: TransferOptions = {}): Promise<Entry> {
    return this.tree.transfer(src, dst, 'copy', Boolean(options.overwrite))
  }

  move(src: string, dst: string, options: TransferOptions = {}): Promise<Entry> {
    return this.tree.transfer(src, dst, 'move', Boolean(options.overwrite))
  }

  /**
   * Capacity from the servers' disks; `used` is the logical bytes of every
   * file, `stored` the bytes of the distinct pieces they reference.
   */
  async about(): Promise<About> {
    const {total, free} = await this.store.capacity()
    let used = 0
    const distinct = new Map<string, number>()
    const manifests = new Map<string, Manifest>()
    for await (const {record} of this.tree.files()) {
      used += record.size
      let manifest = manifests.get(record.manifest)
      if (!manifest) {
        const bytes = await this.store.get(META_DB, manifestKey(record.manifest))
        if (!bytes) continue
        manifest = JSON.parse(bytes.toString('utf8')) as Manifest
        manifests.set(record.manifest, manifest)
      }

      for (const [i, hash] of manifest.pieces.entries()) distinct.set(hash, pieceLength(manifest, i))
    }

    const stored = [...distinct.values()].reduce((a, b) => a + b, 0)
    return {total, used, free, trash: null, stored, pieces: distinct.size, dedup_saved: used - stored}
  }

  async close(): Promise<void> {
    await this.store.close()
    await this.options.onClose?.()
  }
}
