import {createHash, type Hash} from 'node:crypto'
import {Transform, type TransformCallback} from 'node:stream'

import type {HashName} from './adapter.js'
import {IntegrityError} from './errors.js'

export type Digests = Partial<Record<HashName, string>>

/**
 * A pass-through stream that hashes what flows through it (md5 and sha256)
 * and counts bytes, so content is hashed once, on its way.
 */
export class HashingStream extends Transform {
  bytes = 0
  private readonly hashes: Record<HashName, Hash> = {md5: createHash('md5'), sha256: createHash('sha256')}
  private result?: Record<HashName, string>

  constructor(private readonly onBytes?: (total: number, delta: number) => void) {
    super()
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hashes.md5.update(chunk)
    this.hashes.sha256.update(chunk)
    this.bytes += chunk.length
    this.onBytes?.(this.bytes, chunk.length)
    callback(null, chunk)
  }

  /** The digests, once the stream has ended. */
  digests(): Record<HashName, string> {
    this.result ??= {md5: this.hashes.md5.digest('hex'), sha256: this.hashes.sha256.digest('hex')}
    return this.result
  }
}

/** Throws IntegrityError if any hash known on both sides differs. */
export function verifyDigests(what: string, actual: Digests, expected: Digests | undefined): void {
  for (const name of ['sha256', 'md5'] as const) {
    const want = expected?.[name]
    const got = actual[name]
    if (want && got && want.toLowerCase() !== got.toLowerCase()) {
      throw new IntegrityError(`${what}: ${name} mismatch (expected ${want}, got ${got})`)
    }
  }
}
