import {AbortMultipartUploadCommand, CopyObjectCommand, DeleteObjectCommand, type S3Client} from '@aws-sdk/client-s3'
import type {Readable} from 'node:stream'
import type {TransformCallback} from 'node:stream'

import type {WriteOptions} from '../adapter.js'
import {DiskError, IntegrityError} from '../errors.js'
import {HashingStream} from '../hashing.js'
import {interrupted, trackAbort} from '../../base/index.js'
import {mapS3Error} from './errors.js'
import {copySourceOf, MAX_COPY_OBJECT, MAX_PARTS, PART_SIZE, QUEUE_SIZE} from './sizes.js'

/** Hashes the content and hands the SHA-256 over before the stream ends, so a single PUT can carry it. */
class MetadataHashingStream extends HashingStream {
  constructor(
    onBytes: (total: number) => void,
    private readonly onDigest: (sha256: string) => void,
  ) {
    super(onBytes, ['sha256'])
  }

  override _flush(callback: TransformCallback): void {
    this.onDigest(this.digests().sha256!)
    callback()
  }
}

export interface UploadResult {
  size: number
  sha256: string
}

/** The fields of lib-storage's Upload this module reads; they are public in its JavaScript but not in its types. */
interface UploadInternals {
  isMultiPart: boolean
  createMultiPartPromise?: Promise<{UploadId?: string}>
}

/**
 * Streams `source` to `bucket/key` with lib-storage's Upload: one PutObject
 * for a body under a part, else a multipart upload with bounded memory.
 * The SHA-256 goes to `x-amz-meta-sha256`: from `expect` when the caller
 * knows it, else computed on the way (a single PUT still carries it; a
 * multipart upload gets it by a server-side self-copy once complete, as its
 * metadata is fixed when it starts). A failed part, an aborted signal or
 * SIGINT/SIGTERM sends AbortMultipartUpload, so no parts are left stored.
 */
export async function uploadObject(
  client: S3Client,
  bucket: string,
  key: string,
  source: Readable,
  options: WriteOptions,
  what: string,
): Promise<UploadResult> {
  const {Upload} = await import('@aws-sdk/lib-storage')
  const expected = options.expect?.sha256?.toLowerCase()
  const metadata: Record<string, string> = expected ? {sha256: expected} : {}
  const hashing = new MetadataHashingStream(
    (total) => options.onProgress?.(total),
    (sha256) => {
      metadata.sha256 ??= sha256
    },
  )
  source.on('error', (error) => hashing.destroy(error))
  source.pipe(hashing)
  const partSize = Math.max(PART_SIZE, Math.ceil((options.size ?? 0) / MAX_PARTS))
  const upload = new Upload({
    client,
    params: {Bucket: bucket, Key: key, Body: hashing, Metadata: metadata},
    partSize,
    queueSize: QUEUE_SIZE,
    leavePartsOnError: false,
  })
  const internals = upload as unknown as UploadInternals
  const abortRemote = async (): Promise<void> => {
    await upload.abort()
    const created = await internals.createMultiPartPromise?.catch(() => undefined)
    if (created?.UploadId) {
      await client.send(new AbortMultipartUploadCommand({Bucket: bucket, Key: key, UploadId: created.UploadId})).catch(() => {})
    }
  }

  const untrack = trackAbort(abortRemote)
  const onAbort = (): void => void abortRemote()
  options.signal?.addEventListener('abort', onAbort, {once: true})
  let etag: string | undefined
  try {
    etag = (await upload.done()).ETag
  } catch (error) {
    // Interrupted: the signal handler is aborting the upload and exits 130/143; reporting this failure would race it.
    if (interrupted()) await new Promise(() => {})
    source.unpipe(hashing)
    hashing.destroy()
    await abortRemote()
    // An error of the source (a self-verifying read that failed) is already typed.
    throw error instanceof DiskError ? error : mapS3Error(hashing.errored ?? error, what, 'dir')
  } finally {
    untrack()
    options.signal?.removeEventListener('abort', onAbort)
  }

  const sha256 = hashing.digests().sha256!
  if (expected && expected !== sha256) {
    // Already visible: remove it rather than leave wrong content under the name.
    await client.send(new DeleteObjectCommand({Bucket: bucket, Key: key})).catch(() => {})
    throw new IntegrityError(`${what}: sha256 mismatch (expected ${expected}, got ${sha256})`)
  }

  if (internals.isMultiPart && !expected && hashing.bytes <= MAX_COPY_OBJECT) {
    // The metadata of a multipart upload is fixed by CreateMultipartUpload, before the hash is known.
    await client
      .send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: key,
          CopySource: copySourceOf(bucket, key),
          CopySourceIfMatch: etag,
          Metadata: {sha256},
          MetadataDirective: 'REPLACE',
        }),
      )
      .catch((error: unknown) => {
        throw mapS3Error(error, `${what}: cannot store its sha256`)
      })
  }

  return {size: hashing.bytes, sha256}
}
