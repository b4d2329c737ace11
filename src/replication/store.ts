import {createHash} from 'node:crypto'

import {invalidParams} from './faults.js'

/** What a put or append answered: `"OK"` for put, the new length for append (as Redis APPEND does). */
export type Reply = string | number

/** A whole copy of a server's state, as it travels from master to backup. */
export interface Snapshot {
  /** Every key and its value. */
  data: [string, string][]
  /** Every applied request id and the reply it got. */
  applied: [string, Reply][]
}

export type WriteOp = 'put' | 'append'

/**
 * The key-value state of one replica: the values, and the table of applied
 * request ids with their replies, which makes a retried write take effect at
 * most once. Memory only: a restarted server starts empty.
 */
export class KvStore {
  private data = new Map<string, string>()
  private applied = new Map<string, Reply>()

  get(key: string): string | undefined {
    return this.data.get(key)
  }

  /**
   * Applies a write unless its request id was applied before, in which case
   * it returns the reply stored then and changes nothing.
   */
  apply(op: WriteOp, key: string, value: string, requestId?: string): Reply {
    if (requestId !== undefined) {
      const earlier = this.applied.get(requestId)
      if (earlier !== undefined) return earlier
    }
    let reply: Reply
    if (op === 'put') {
      this.data.set(key, value)
      reply = 'OK'
    } else {
      const next = (this.data.get(key) ?? '') + value
      this.data.set(key, next)
      reply = next.length
    }
    if (requestId !== undefined) this.applied.set(requestId, reply)
    return reply
  }

  /** The reply a request id got, if it was applied. */
  replyFor(requestId: string): Reply | undefined {
    return this.applied.get(requestId)
  }

  snapshot(): Snapshot {
    return {data: [...this.data], applied: [...this.applied]}
  }

  restore(snapshot: Snapshot): void {
    this.data = new Map(snapshot.data)
    this.applied = new Map(snapshot.applied)
  }

  clear(): void {
    this.data.clear()
    this.applied.clear()
  }

  get keys(): number {
    return this.data.size
  }

  get requests(): number {
    return this.applied.size
  }

  /** SHA-256 over the sorted keys and values: equal digests, equal data. */
  digest(): string {
    const hash = createHash('sha256')
    for (const key of [...this.data.keys()].sort()) hash.update(JSON.stringify([key, this.data.get(key)]))
    return hash.digest('hex')
  }
}

/** Reads a snapshot out of XML-RPC arrays, checking every element. */
export function parseSnapshot(data: unknown, applied: unknown): Snapshot {
  return {
    data: pairs('data', data, (v): v is string => typeof v === 'string'),
    applied: pairs('applied', applied, (v): v is Reply => typeof v === 'string' || Number.isSafeInteger(v)),
  }
}

function pairs<V>(what: string, value: unknown, isValue: (v: unknown) => v is V): [string, V][] {
  if (!Array.isArray(value)) throw invalidParams(`${what} must be an array of [key, value] pairs`)
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || !isValue(pair[1])) {
      throw invalidParams(`${what} must be an array of [key, value] pairs`)
    }
  }
  return value as [string, V][]
}
