import {randomUUID} from 'node:crypto'

import {isWithin} from '../backends/remote-path.js'

/** One WebDAV write lock (RFC 4918 §6), held in memory: a restart drops locks, as their timeouts allow. */
export interface Lock {
  token: string
  /** The locked path (the lock root). */
  root: string
  scope: 'exclusive' | 'shared'
  depth: '0' | 'infinity'
  /** The `<D:owner>` content as sent, serialised. */
  owner: string
  /** Seconds asked for; null for Infinite. */
  timeoutSeconds: number | null
  expires: number
  /** The user who took it, when there is auth. */
  principal?: string
}

const MAX_TIMEOUT = 7 * 24 * 3600

/** Parses a Timeout header (`Second-600, Infinite`): the first value we understand. */
export function parseTimeout(header: string | undefined): number | null {
  for (const part of (header ?? '').split(',')) {
    const value = part.trim()
    if (/^infinite$/i.test(value)) return null
    const match = /^second-(\d+)$/i.exec(value)
    if (match) return Math.min(Number(match[1]), MAX_TIMEOUT)
  }

  return 3600
}

export class LockManager {
  private readonly locks = new Map<string, Lock>()

  private sweep(): void {
    const now = Date.now()
    for (const [token, lock] of this.locks) if (lock.expires <= now) this.locks.delete(token)
  }

  get(token: string): Lock | undefined {
    this.sweep()
    return this.locks.get(token)
  }

  /** The locks that cover `path`: on it, or depth-infinity locks on an ancestor. */
  covering(path: string): Lock[] {
    this.sweep()
    return [...this.locks.values()].filter((lock) => lock.root === path || (lock.depth === 'infinity' && isWithin(path, lock.root)))
  }

  /** Locks on `path` or anywhere below it (a depth-infinity operation touches them all). */
  within(path: string): Lock[] {
    this.sweep()
    return [...this.locks.values()].filter((lock) => isWithin(lock.root, path))
  }

  /** The locks a new lock on `path` with this scope and depth would conflict with. */
  conflicts(path: string, scope: Lock['scope'], depth: Lock['depth']): Lock[] {
    const candidates = new Set([...this.covering(path), ...(depth === 'infinity' ? this.within(path) : [])])
    return [...candidates].filter((lock) => scope === 'exclusive' || lock.scope === 'exclusive')
  }

  create(fields: Omit<Lock, 'token' | 'expires'>): Lock {
    const lock: Lock = {...fields, token: `opaquelocktoken:${randomUUID()}`, expires: 0}
    this.touch(lock)
    this.locks.set(lock.token, lock)
    return lock
  }

  refresh(lock: Lock, timeoutSeconds: number | null): void {
    lock.timeoutSeconds = timeoutSeconds
    this.touch(lock)
  }

  private touch(lock: Lock): void {
    lock.expires = Date.now() + (lock.timeoutSeconds ?? MAX_TIMEOUT) * 1000
  }

  remove(token: string): boolean {
    return this.locks.delete(token)
  }

  /** Drops the locks at or below `path` (the resources are gone). */
  removeWithin(path: string): void {
    for (const lock of this.within(path)) this.locks.delete(lock.token)
  }
}
