/** Range size of a parallel read through the SDK (openRead): about 4 × 8 MiB buffered at most. */
export const RANGE_SIZE = 8 * 1024 * 1024
/** Files from this size on are read as parallel ranges (rclone's multi-thread download does the same from 250 MiB). */
export const PARALLEL_READ_FROM = 4 * RANGE_SIZE

/**
 * Part size and parts in flight of multipart uploads: at most about
 * (QUEUE + 1) × PART bytes are buffered, 40 MiB, whatever the file's size.
 * 8 MiB parts keep a 10 000-part upload under 78 GiB; larger known sizes
 * get larger parts (the SDK's rule), at most 5 GiB each.
 */
export const PART_SIZE = 8 * 1024 * 1024
export const QUEUE_SIZE = 4
export const MAX_PARTS = 10_000

/** CopyObject's limit; larger objects are copied part by part with UploadPartCopy. */
export const MAX_COPY_OBJECT = 5 * 1024 ** 3

/** `x-amz-copy-source`: the bucket and the key, URL-encoded segment by segment. */
export function copySourceOf(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
}
