import {createHash, type Hash} from 'node:crypto'
import {Transform, type TransformCallback} from 'node:stream'

import type {HashName} from './adapter.js'
import {IntegrityError} from './errors.js'

export type Digests = Partial<Record<HashName, string>>

/**
 * A pass-through stream that hashes what flows through it (md5 and sha256
 * unless told which) and counts bytes, so content is hashed once, on its way.
 */
export class HashingStream extends Transform {
  bytes = 0
  private readonly hashes: Array<[HashName, Hash]>
  private result?: Digests

  constructor(
    private readonly onBytes?: (total: number, delta: number) => void,
    algorithms: readonly HashName[] = ['md5', 'sha256'],
  ) {
    super()
    this.hashes = algorithms.map((name) => [name, createHash(name)])
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    for (const [, hash] of this.hashes) hash.update(chunk)
    this.bytes += chunk.length
    this.onBytes?.(this.bytes, chunk.length)
    callback(null, chunk)
  }

  /** The digests, once the stream has ended. */
  digests(): Digests {
    this.result ??= Object.fromEntries(this.hashes.map(([name, hash]) => [name, hash.digest('hex')]))
    return this.result
  }
}

const selfVerifying = new WeakSet<object>()

/**
 * Marks a read stream that checks its own content against the file's hash
 * and fails rather than end cleanly on a mismatch (the cluster's pieces), so
 * a writer need not hash the same bytes again.
 */
export function markSelfVerifying<T extends object>(stream: T): T {
  selfVerifying.add(stream)
  return stream
}

export function isSelfVerifying(stream: object): boolean {
  return selfVerifying.has(stream)
}

/** The hash names with a value in `expected`. */
export function namesIn(expected: Digests | undefined): HashName[] {
  return (['md5', 'sha256'] as const).filter((name) => Boolean(expected?.[name]))
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
