// Deterministic test data: the same bytes on every run, for any size.
import {createCipheriv, createHash} from 'node:crypto'

/** `size` seeded pseudo-random bytes (AES-CTR of zeros under a key derived from `seed`). */
export function seeded(size: number, seed: string): Buffer {
  const cipher = createCipheriv('aes-128-ctr', createHash('sha256').update(seed).digest().subarray(0, 16), Buffer.alloc(16))
  return cipher.update(Buffer.alloc(size))
}

/** The SHA-256 of `data`, hex. */
export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

/** The bytes of `seeded(size, seed)` as 1 MiB chunks, never all in memory. */
export function* seededChunks(size: number, seed: string): Generator<Buffer> {
  const cipher = createCipheriv('aes-128-ctr', createHash('sha256').update(seed).digest().subarray(0, 16), Buffer.alloc(16))
  const zeros = Buffer.alloc(1024 * 1024)
  for (let sent = 0; sent < size; sent += zeros.length) yield cipher.update(zeros.subarray(0, Math.min(zeros.length, size - sent)))
}
