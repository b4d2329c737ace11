import {GetObjectCommand, type S3Client} from '@aws-sdk/client-s3'
import {Readable} from 'node:stream'

import {mapS3Error} from './errors.js'

import {RANGE_SIZE} from './sizes.js'

const RANGES_IN_FLIGHT = 4

export interface RangedRead {
  body: Readable
  /** The object's metadata, from the first range's response. */
  metadata: Record<string, string>
}

/**
 * Reads an object as ranged GETs, RANGES_IN_FLIGHT at a time, yielded in
 * order: one TCP stream is limited by its window and the gateway's latency,
 * several keep the pipe full. Every range after the first is pinned to the
 * first one's ETag (If-Match), so a replaced object fails the read instead
 * of mixing two versions.
 */
export async function readRanges(
  client: S3Client,
  bucket: string,
  key: string,
  size: number,
  what: string,
  signal?: AbortSignal,
): Promise<RangedRead> {
  const get = async (start: number, etag?: string) => {
    const end = Math.min(size, start + RANGE_SIZE) - 1
    try {
      const response = await client.send(
        new GetObjectCommand({Bucket: bucket, Key: key, Range: `bytes=${start}-${end}`, IfMatch: etag}),
        {abortSignal: signal},
      )
      // Kept as the chunks the socket gave: concatenating would copy every range once more.
      const data: Buffer[] = []
      let length = 0
      for await (const chunk of response.Body as Readable) {
        data.push(chunk as Buffer)
        length += (chunk as Buffer).length
      }

      if (length !== end - start + 1) throw new Error(`short range ${start}-${end}: ${length} bytes`)
      return {data, response}
    } catch (error) {
      throw mapS3Error(error, what)
    }
  }

  const first = await get(0)
  const etag = first.response.ETag
  async function* ranges(): AsyncGenerator<Buffer> {
    yield* first.data
    const queue: Array<Promise<Buffer[]>> = []
    let next = RANGE_SIZE
    const enqueue = (): void => {
      const range = get(next, etag).then((r) => r.data)
      range.catch(() => {}) // awaited in order below; meanwhile a failure must not count as unhandled
      queue.push(range)
      next += RANGE_SIZE
    }

    while (next < size && queue.length < RANGES_IN_FLIGHT) enqueue()
    while (queue.length > 0) {
      const data = await queue.shift()!
      if (next < size) enqueue()
      yield* data
    }
  }

  return {body: Readable.from(ranges(), {objectMode: false}), metadata: first.response.Metadata ?? {}}
}
