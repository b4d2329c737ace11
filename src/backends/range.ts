import {Transform} from 'node:stream'

/** A byte range of a file: from `offset`, `count` bytes (to the end when absent). */
export interface ByteRange {
  offset: number
  count?: number
}

/** The HTTP Range header for a range: `bytes=10-19`, or `bytes=10-` to the end. */
export function rangeHeader(range: ByteRange): string {
  return `bytes=${range.offset}-${range.count === undefined ? '' : range.offset + range.count - 1}`
}

/**
 * Passes on only the bytes of `range` of what flows through it, for a
 * source that sends the whole file (a backend without ranged reads, or a
 * server that ignored the Range header); ends as soon as the range is out.
 */
export function sliceStream(range: ByteRange): Transform {
  let position = 0
  const end = range.count === undefined ? Number.POSITIVE_INFINITY : range.offset + range.count
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const start = position
      position += chunk.length
      if (position <= range.offset || start >= end) {
        callback()
        if (start >= end) this.push(null)
        return
      }

      callback(null, chunk.subarray(Math.max(0, range.offset - start), Math.min(chunk.length, end - start)))
      if (position >= end) this.push(null)
    },
  })
}
