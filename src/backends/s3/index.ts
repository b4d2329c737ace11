import {createHash} from 'node:crypto'
import {pipeline, type Readable, Transform, type TransformCallback} from 'node:stream'

import type {S3Client} from '@aws-sdk/client-s3'

import type {BackendFactory, Entry, FileSink, HashName, ReadOptions, RemoveOptions, StorageAdapter, TransferOptions, WriteOptions} from '../adapter.js'
import {AuthError, ConflictError, IntegrityError, NotFoundError, UsageError} from '../errors.js'
import {markSelfVerifying} from '../hashing.js'
import {baseName, isWithin, joinPath, parentOf} from '../remote-path.js'
import {runPool} from '../../base/index.js'
import {fetchObject} from './fetch.js'
import {isMissing, mapS3Error} from './errors.js'
import {anyKeyUnder, headBucket, HeadAgents, headObject} from './head.js'
import {putObject} from './put.js'
import {PARALLEL_READ_FROM} from './sizes.js'
import type {S3Access} from './sigv4.js'

type Sdk = typeof import('@aws-sdk/client-s3')

/** The SDK's module and a client made with it. */
interface Connected {
  sdk: Sdk
  client: S3Client
}

/** Server-side copies and deletes in flight for a directory. */
const TREE_CONCURRENCY = 8

interface Location {
  bucket: string
  /** The key, or "" for the bucket itself. */
  key: string
}

/** `/bucket/a/b` → bucket and key `a/b`; `/` has no location. */
function locate(path: string): Location | undefined {
  if (path === '/') return undefined
  const [bucket, ...rest] = path.slice(1).split('/')
  return {bucket, key: rest.join('/')}
}

function dirEntry(path: string, modified: string | null = null): Entry {
  return {name: baseName(path), path, type: 'dir', size: null, modified}
}

/** Fails the read at its end if the content's SHA-256 is not the one stored with the object. */
class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256')
  constructor(
    private readonly expected: string,
    private readonly what: string,
  ) {
    super()
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk)
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    const got = this.hash.digest('hex')
    callback(got === this.expected ? null : new IntegrityError(`${this.what}: sha256 mismatch (expected ${this.expected}, got ${got})`))
  }
}

/**
 * The `s3:` backend (DESIGN.md §14): buckets at the top level, keys below.
 * Directories are key prefixes, as rclone has them: `mkdir` below a bucket
 * stores nothing (this adapter remembers it, so the directory exists for the
 * rest of the run), and a prefix that holds nothing does not exist.
 */
export class S3Backend implements StorageAdapter {
  readonly name = 's3'
  readonly hashes: readonly HashName[] = ['sha256']
  /** Directories made by this adapter that may hold nothing yet. */
  private readonly made = new Set<string>()

  private connecting: Promise<Connected> | undefined
  private agents: HeadAgents | undefined

  /** `connect` loads the SDK and makes its client; `access` is what our own requests need (HEAD, the parallel download into a local file). */
  constructor(
    private readonly connect: () => Promise<Connected>,
    private readonly access?: S3Access,
    /** Attempts after the first for a request of our own that failed on the network or with 5xx (the SDK's maxAttempts - 1). */
    private readonly retries = 2,
  ) {}

  /** The SDK and its client, loaded on first use: a download (HEAD and ranged GETs of our own) never needs them. */
  private sdk(): Promise<Connected> {
    this.connecting ??= this.connect()
    return this.connecting
  }

  /** The SDK's client, loaded on first use. */
  async client(): Promise<S3Client> {
    return (await this.sdk()).client
  }

  /** Sends the command `make` builds from the SDK, mapping its failure to the typed errors; `T` names the fields of the output the caller reads. */
  private async send<T = unknown>(make: (sdk: Sdk) => object, what: string, missing: 'file' | 'dir' = 'file'): Promise<T> {
    const {sdk, client} = await this.sdk()
    try {
      // The SDK's per-command overloads do not type a command passed through a helper.
      return (await client.send(make(sdk) as never)) as T
    } catch (error) {
      throw mapS3Error(error, what, missing)
    }
  }

  private madeUnder(path: string): boolean {
    for (const dir of this.made) if (isWithin(dir, path)) return true
    return false
  }

  private forget(path: string): void {
    for (const dir of this.made) if (isWithin(dir, path)) this.made.delete(dir)
  }

  async *list(dir: string): AsyncIterable<Entry> {
    const what = `cannot list ${dir}`
    const at = locate(dir)
    if (!at) {
      const {Buckets = []} = await this.send<{Buckets?: Array<{Name?: string; CreationDate?: Date}>}>((s) => new s.ListBucketsCommand({}), what, 'dir')
      for (const bucket of Buckets) yield dirEntry(`/${bucket.Name}`, bucket.CreationDate?.toISOString() ?? null)
      return
    }

    const prefix = at.key === '' ? '' : `${at.key}/`
    const shown = new Set<string>()
    let any = at.key === ''
    let token: string | undefined
    do {
      const page = await this.send<{
        CommonPrefixes?: Array<{Prefix?: string}>
        Contents?: Array<{Key?: string; Size?: number; LastModified?: Date}>
        IsTruncated?: boolean
        NextContinuationToken?: string
      }>((s) => new s.ListObjectsV2Command({Bucket: at.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token}), what, 'dir')
      for (const common of page.CommonPrefixes ?? []) {
        const name = common.Prefix!.slice(prefix.length, -1)
        any = true
        if (name === '' || shown.has(name)) continue
        shown.add(name)
        yield dirEntry(joinPath(dir, name))
      }

      for (const object of page.Contents ?? []) {
        const name = object.Key!.slice(prefix.length)
        any = true
        if (name === '') continue // a directory marker written by another tool
        yield {name, path: joinPath(dir, name), type: 'file', size: object.Size ?? 0, modified: object.LastModified?.toISOString() ?? null}
      }

      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)

    for (const made of this.made) {
      if (made === dir || !isWithin(made, dir)) continue
      any = true
      const name = made.slice(dir.length + 1).split('/')[0]
      if (shown.has(name)) continue
      shown.add(name)
      yield dirEntry(joinPath(dir, name))
    }

    if (any || this.made.has(dir)) return
    if (await this.headObject(at)) throw new ConflictError(`${what}: not a directory`, 'not-directory')
    throw new NotFoundError(`${what}: directory not found`, 'dir')
  }

  /** The object at a key, or undefined when there is none. */
  private async headObject(at: Location): Promise<Entry | undefined> {
    const path = `/${at.bucket}/${at.key}`
    const what = `cannot stat ${path}`
    let found: {size: number; modified: Date | undefined; metadata: Record<string, string | undefined>} | undefined
    if (this.access) {
      // A signed HEAD of our own: the SDK (hundreds of milliseconds to load) is not needed to stat.
      this.agents ??= new HeadAgents()
      found = await headObject(this.access, at.bucket, at.key, what, this.agents)
    } else {
      try {
        const head = await this.send<{ContentLength?: number; LastModified?: Date; Metadata?: Record<string, string>}>(
          (s) => new s.HeadObjectCommand({Bucket: at.bucket, Key: at.key}),
          what,
        )
        found = {size: head.ContentLength ?? 0, modified: head.LastModified, metadata: head.Metadata ?? {}}
      } catch (error) {
        if (!isMissing((error as {cause?: unknown}).cause ?? error)) throw error
      }
    }

    if (!found) return undefined
    const entry: Entry = {name: baseName(path), path, type: 'file', size: found.size, modified: found.modified?.toISOString() ?? null}
    const sha256 = found.metadata.sha256
    if (sha256 && /^[0-9a-f]{64}$/.test(sha256)) entry.sha256 = sha256
    return entry
  }

  /** True when some key starts with `key/` (a missing bucket is NotFoundError('dir')). */
  private async prefixHoldsAnything(at: Location, what: string): Promise<boolean> {
    if (this.access) {
      // A signed ListObjectsV2 of our own: a stat or an upload to a new key need not load the SDK.
      this.agents ??= new HeadAgents()
      return anyKeyUnder(this.access, at.bucket, at.key === '' ? '' : `${at.key}/`, what, this.agents)
    }

    const page = await this.send<{KeyCount?: number; Contents?: unknown[]}>(
      (s) => new s.ListObjectsV2Command({Bucket: at.bucket, Prefix: at.key === '' ? '' : `${at.key}/`, MaxKeys: 1}),
      what,
      'dir',
    )
    return (page.KeyCount ?? page.Contents?.length ?? 0) > 0
  }

  private async bucketExists(bucket: string, what: string): Promise<boolean> {
    if (this.access) {
      this.agents ??= new HeadAgents()
      return headBucket(this.access, bucket, what, this.agents)
    }

    try {
      const {sdk, client} = await this.sdk()
      await client.send(new sdk.HeadBucketCommand({Bucket: bucket}))
      return true
    } catch (error) {
      if (isMissing(error)) return false
      throw mapS3Error(error, what)
    }
  }

  async stat(path: string): Promise<Entry> {
    const what = `cannot stat ${path}`
    const at = locate(path)
    if (!at) return dirEntry('/')
    if (at.key === '') {
      if (await this.bucketExists(at.bucket, what)) return dirEntry(path)
      throw new NotFoundError(`${what}: bucket not found`, 'file', {backendCode: 'NoSuchBucket'})
    }

    const object = await this.headObject(at)
    if (object) return object
    if (this.madeUnder(path) || (await this.prefixHoldsAnything(at, what))) return dirEntry(path)
    throw new NotFoundError(`${what}: file or directory not found`, 'file')
  }

  async mkdir(path: string): Promise<Entry> {
    const what = `cannot create directory ${path}`
    const at = locate(path)
    if (!at) throw new ConflictError(`${what}: the root exists`)
    if (at.key === '') {
      if (await this.bucketExists(at.bucket, what)) throw new ConflictError(`${what}: bucket already exists`)
      await this.send((s) => new s.CreateBucketCommand({Bucket: at.bucket}), what)
      return dirEntry(path)
    }

    if (!(await this.bucketExists(at.bucket, what))) throw new NotFoundError(`${what}: bucket not found`, 'dir')
    if (await this.headObject(at)) throw new ConflictError(`${what}: a file exists there`)
    if (this.made.has(path) || (await this.prefixHoldsAnything(at, what))) throw new ConflictError(`${what}: already exists`)
    this.made.add(path)
    return dirEntry(path)
  }

  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    const what = `cannot remove ${path}`
    const at = locate(path)
    if (!at) throw new UsageError('refusing to remove the root directory')
    const entry = await this.stat(path)
    if (entry.type === 'file') {
      await this.send((s) => new s.DeleteObjectCommand({Bucket: at.bucket, Key: at.key}), what)
      return
    }

    if (!options.recursive) throw new UsageError(`${what}: is a directory; use -r`)
    await this.deleteTree(at, what)
    this.forget(path)
    if (at.key === '') {
      await this.abortUploads(at.bucket, what)
      await this.send((s) => new s.DeleteBucketCommand({Bucket: at.bucket}), what)
    }
  }

  /** Every key under a directory (the whole bucket for its root), page by page. */
  private async *keysUnder(at: Location, what: string): AsyncGenerator<{Key: string; Size: number}> {
    const prefix = at.key === '' ? '' : `${at.key}/`
    let token: string | undefined
    do {
      const page = await this.send<{Contents?: Array<{Key?: string; Size?: number}>; IsTruncated?: boolean; NextContinuationToken?: string}>(
        (s) => new s.ListObjectsV2Command({Bucket: at.bucket, Prefix: prefix, ContinuationToken: token}),
        what,
        'dir',
      )
      for (const object of page.Contents ?? []) yield {Key: object.Key!, Size: object.Size ?? 0}
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
  }

  /** Deletes every key under a directory, 1000 per DeleteObjects request. */
  private async deleteTree(at: Location, what: string): Promise<void> {
    let batch: Array<{Key: string}> = []
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      const result = await this.send<{Errors?: Array<{Key?: string; Code?: string; Message?: string}>}>(
        (s) => new s.DeleteObjectsCommand({Bucket: at.bucket, Delete: {Objects: batch, Quiet: true}}),
        what,
      )
      batch = []
      const failed = result.Errors?.[0]
      if (failed) throw mapS3Error({name: failed.Code, message: `${failed.Key}: ${failed.Message ?? failed.Code}`}, what)
    }

    for await (const object of this.keysUnder(at, what)) {
      batch.push({Key: object.Key})
      if (batch.length === 1000) await flush()
    }

    await flush()
  }

  /** Aborts the multipart uploads left in a bucket, so it can be deleted. */
  private async abortUploads(bucket: string, what: string): Promise<void> {
    const {Uploads = []} = await this.send<{Uploads?: Array<{Key?: string; UploadId?: string}>}>(
      (s) => new s.ListMultipartUploadsCommand({Bucket: bucket}),
      what,
    )
    for (const upload of Uploads) {
      await this.send((s) => new s.AbortMultipartUploadCommand({Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId}), what)
    }
  }

  async openRead(path: string, options: ReadOptions = {}): Promise<Readable> {
    const what = `cannot read ${path}`
    const at = locate(path)
    if (!at || at.key === '') throw new UsageError(`${what}: is a directory`)
    const known = options.entry?.path === path && options.entry.type === 'file' ? options.entry.size : null
    if (known !== null && known >= PARALLEL_READ_FROM) {
      const {readRanges} = await import('./read.js')
      const {body, metadata} = await readRanges(await this.client(), at.bucket, at.key, known, what, options.signal)
      return this.verified(body, metadata.sha256, what)
    }

    let response
    try {
      const {sdk, client} = await this.sdk()
      response = await client.send(new sdk.GetObjectCommand({Bucket: at.bucket, Key: at.key}), {abortSignal: options.signal})
    } catch (error) {
      if (!isMissing(error) || (error as {name?: string}).name === 'NoSuchBucket') throw mapS3Error(error, what, 'dir')
      if (this.madeUnder(path) || (await this.prefixHoldsAnything(at, what))) throw new UsageError(`${what}: is a directory`)
      throw new NotFoundError(`${what}: file not found`, 'file', {backendCode: 'NoSuchKey'})
    }

    return this.verified(response.Body as Readable, response.Metadata?.sha256, what)
  }

  /**
   * Large files to a local file: parallel ranged GETs on plain sockets,
   * each written at its position, hashed in order as the file fills
   * (fetch.ts). Over https the SDK's streamed read serves instead.
   */
  readsInto(entry: Entry): boolean {
    return this.access !== undefined && entry.type === 'file' && (entry.size ?? 0) >= PARALLEL_READ_FROM && !/^https:/i.test(this.access.endpoint ?? 'https:')
  }

  async readInto(path: string, sink: FileSink, options: ReadOptions & {onProgress?: (bytes: number) => void} = {}): Promise<Partial<Record<HashName, string>>> {
    const what = `cannot read ${path}`
    const at = locate(path)
    if (!at || at.key === '' || !this.access) throw new UsageError(`${what}: is a directory`)
    return fetchObject(this.access, at.bucket, at.key, sink, {
      what,
      signal: options.signal,
      onProgress: (bytes) => {
        sink.wrote(bytes)
        options.onProgress?.(bytes)
      },
    })
  }

  /** The body, checked at its end against the sha256 stored with the object when there is one. */
  private verified(body: Readable, sha256: string | undefined, what: string): Readable {
    if (!sha256 || !/^[0-9a-f]{64}$/.test(sha256)) return body
    const verifying = new VerifyingStream(sha256, what)
    pipeline(body, verifying, () => {})
    return markSelfVerifying(verifying)
  }

  async write(path: string, source: Readable, options: WriteOptions = {}): Promise<Entry> {
    const what = `cannot write ${path}`
    const at = locate(path)
    if (!at || at.key === '') throw new UsageError(`${what}: a bucket is a directory`)
    if (this.madeUnder(path)) throw new ConflictError(`${what}: is a directory`, 'is-directory')
    if (!options.overwrite && (await this.headObject(at))) {
      throw new ConflictError(`${what}: destination already exists`, 'exists', {hint: 'use --overwrite'})
    }

    let result: {size: number; sha256: string}
    if (this.access) {
      // Signed requests of our own: an upload never loads the SDK (put.ts).
      this.agents ??= new HeadAgents()
      result = await putObject(this.access, this.agents, at.bucket, at.key, source, options, what, this.retries)
    } else {
      const {uploadObject} = await import('./upload.js')
      result = await uploadObject(await this.client(), at.bucket, at.key, source, options, what)
    }

    const {size, sha256} = result
    return {name: baseName(path), path, type: 'file', size, modified: new Date().toISOString(), sha256}
  }

  /** Checks a copy or move destination: not inside the source, not a directory, not an existing file unless overwriting. */
  private async checkDestination(src: string, dst: string, options: TransferOptions, what: string): Promise<Location> {
    const at = locate(dst)
    if (!at) throw new UsageError(`${what}: the root is not a destination`)
    if (isWithin(dst, src)) throw new UsageError(`${what}: destination is inside the source`)
    const existing = await this.stat(dst).catch((error: unknown) => {
      if (error instanceof NotFoundError) return undefined
      throw error
    })
    if (existing?.type === 'dir') throw new ConflictError(`${what}: ${dst} is an existing directory`, 'is-directory')
    if (existing && !options.overwrite) throw new ConflictError(`${what}: destination already exists`, 'exists', {hint: 'use --overwrite'})
    return at
  }

  async copy(src: string, dst: string, options: TransferOptions = {}): Promise<Entry> {
    return this.copyTree(src, dst, options, `cannot copy ${src} to ${dst}`, false)
  }

  /** Move = server-side copy + delete: S3 has no rename. */
  async move(src: string, dst: string, options: TransferOptions = {}): Promise<Entry> {
    return this.copyTree(src, dst, options, `cannot move ${src} to ${dst}`, true)
  }

  private async copyTree(src: string, dst: string, options: TransferOptions, what: string, move: boolean): Promise<Entry> {
    const from = locate(src)
    if (!from) throw new UsageError(`${what}: cannot ${move ? 'move' : 'copy'} the root`)
    const entry = await this.stat(src)
    const to = await this.checkDestination(src, dst, options, what)
    if (entry.type === 'file') {
      try {
        const {copyObject} = await import('./copy.js')
        await copyObject(await this.client(), from, to, entry.size ?? 0, entry.sha256)
      } catch (error) {
        throw mapS3Error(error, what, 'dir')
      }

      if (move) await this.send((s) => new s.DeleteObjectCommand({Bucket: from.bucket, Key: from.key}), what)
      return {...entry, name: baseName(dst), path: dst, sha256: entry.sha256}
    }

    if (to.key === '' && !(await this.bucketExists(to.bucket, what))) {
      await this.send((s) => new s.CreateBucketCommand({Bucket: to.bucket}), what)
    }

    const fromPrefix = from.key === '' ? '' : `${from.key}/`
    const toPrefix = to.key === '' ? '' : `${to.key}/`
    const moved: Array<{Key: string}> = []
    const failures = await runPool(this.keysUnder(from, what), TREE_CONCURRENCY, async (object) => {
      const key = toPrefix + object.Key.slice(fromPrefix.length)
      // CopyObject keeps the metadata (the sha256); only a > 5 GiB copy needs it passed on.
      const sha256 = object.Size > 5 * 1024 ** 3 ? (await this.headObject({bucket: from.bucket, key: object.Key}))?.sha256 : undefined
      const {copyObject} = await import('./copy.js')
      await copyObject(await this.client(), {bucket: from.bucket, key: object.Key}, {bucket: to.bucket, key}, object.Size, sha256)
      moved.push({Key: object.Key})
    })
    if (failures.length > 0) throw mapS3Error(failures[0].error, what, 'dir')
    for (const made of [...this.made]) if (isWithin(made, src)) this.made.add(dst + made.slice(src.length))
    if (this.made.has(src) && to.key !== '') this.made.add(dst)
    if (move) {
      await this.deleteTree(from, what)
      this.forget(src)
      if (from.key === '') await this.send((s) => new s.DeleteBucketCommand({Bucket: from.bucket}), what)
    }

    return dirEntry(dst)
  }

  async close(): Promise<void> {
    this.agents?.destroy()
    if (this.connecting) (await this.connecting.catch(() => undefined))?.client.destroy()
  }
}

export const createS3Backend: BackendFactory = async (settings) => {
  const accessKeyId = settings.s3AccessKeyId
  const secretAccessKey = settings.s3SecretAccessKey
  if (!accessKeyId || !secretAccessKey) {
    throw new AuthError('no S3 credentials', {
      hint: 'set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or config s3.accessKeyId and s3.secretAccessKey)',
    })
  }

  if (settings.s3Endpoint && !/^https?:\/\//.test(settings.s3Endpoint)) {
    throw new UsageError(`S3_ENDPOINT must be an http:// or https:// URL, not "${settings.s3Endpoint}"`)
  }

  const access: S3Access = {
    endpoint: settings.s3Endpoint,
    region: settings.s3Region ?? 'us-east-1',
    forcePathStyle: settings.s3ForcePathStyle ?? settings.s3Endpoint !== undefined,
    accessKeyId,
    secretAccessKey,
  }
  const connect = async (): Promise<Connected> => {
    // The SDK warns on every run that its releases after January 2027 need Node 22; this build pins its version.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    const sdk = await import('@aws-sdk/client-s3')
    const client = new sdk.S3Client({
      endpoint: settings.s3Endpoint,
      region: access.region,
      forcePathStyle: access.forcePathStyle,
      credentials: {accessKeyId, secretAccessKey},
      // radosgw (and other S3 services) reject the SDK's default streamed CRC checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The SDK retries throttling and 5xx itself; transfers retry whole files on top (--retries).
      maxAttempts: Math.min(settings.retries, 2) + 1,
      requestHandler: {httpAgent: {keepAlive: true, maxSockets: 32}, httpsAgent: {keepAlive: true, maxSockets: 32}, connectionTimeout: 10_000},
    })
    return {sdk, client}
  }

  return new S3Backend(connect, access, Math.min(settings.retries, 2))
}
