import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3'

import {runPool, trackAbort} from '../../base/index.js'
import {copySourceOf, MAX_COPY_OBJECT} from './sizes.js'

export {copySourceOf, MAX_COPY_OBJECT} from './sizes.js'

const COPY_PART = 512 * 1024 ** 2
const COPY_PARTS_IN_FLIGHT = 4

export interface ObjectRef {
  bucket: string
  key: string
}

/**
 * Copies one object server-side, its metadata (the sha256) included:
 * CopyObject up to 5 GiB, UploadPartCopy in 512 MiB ranges past that
 * (aborted if a part fails or the process is interrupted).
 */
export async function copyObject(client: S3Client, src: ObjectRef, dst: ObjectRef, size: number, sha256?: string): Promise<void> {
  const CopySource = copySourceOf(src.bucket, src.key)
  if (size <= MAX_COPY_OBJECT) {
    await client.send(new CopyObjectCommand({Bucket: dst.bucket, Key: dst.key, CopySource, MetadataDirective: 'COPY'}))
    return
  }

  const created = await client.send(
    new CreateMultipartUploadCommand({Bucket: dst.bucket, Key: dst.key, Metadata: sha256 ? {sha256} : undefined}),
  )
  const UploadId = created.UploadId!
  const abort = (): Promise<void> =>
    client
      .send(new AbortMultipartUploadCommand({Bucket: dst.bucket, Key: dst.key, UploadId}))
      .then(() => {})
      .catch(() => {})
  const untrack = trackAbort(abort)
  try {
    const count = Math.ceil(size / COPY_PART)
    const parts: Array<{PartNumber: number; ETag?: string}> = []
    const failures = await runPool(
      Array.from({length: count}, (_, i) => i + 1),
      COPY_PARTS_IN_FLIGHT,
      async (PartNumber) => {
        const start = (PartNumber - 1) * COPY_PART
        const end = Math.min(size, start + COPY_PART) - 1
        const result = await client.send(
          new UploadPartCopyCommand({Bucket: dst.bucket, Key: dst.key, UploadId, PartNumber, CopySource, CopySourceRange: `bytes=${start}-${end}`}),
        )
        parts.push({PartNumber, ETag: result.CopyPartResult?.ETag})
      },
    )
    if (failures.length > 0) throw failures[0].error
    parts.sort((a, b) => a.PartNumber - b.PartNumber)
    await client.send(new CompleteMultipartUploadCommand({Bucket: dst.bucket, Key: dst.key, UploadId, MultipartUpload: {Parts: parts}}))
  } catch (error) {
    await abort()
    throw error
  } finally {
    untrack()
  }
}
