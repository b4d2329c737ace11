import {setTimeout as sleep} from 'node:timers/promises'

import {TemporaryError} from './errors.js'

/** The retry policy of DESIGN.md §2. */
export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number
  /** First backoff delay; doubles each time. Default 500 ms. */
  baseMs?: number
  /** Backoff cap. Default 8 s. */
  maxMs?: number
  /** The most a Retry-After is honoured. Default 30 s. */
  maxRetryAfterMs?: number
  /** Told about each retry before its wait. */
  onRetry?: (error: TemporaryError, attempt: number, delayMs: number) => void
  signal?: AbortSignal
}

/** The wait before retry number `attempt` (1-based). */
export function backoffDelay(attempt: number, error: TemporaryError, policy: RetryPolicy): number {
  const base = policy.baseMs ?? 500
  const max = policy.maxMs ?? 8000
  const exponential = Math.min(max, base * 2 ** (attempt - 1))
  if (error.retryAfterMs !== undefined) {
    return Math.min(policy.maxRetryAfterMs ?? 30_000, Math.max(error.retryAfterMs, 0))
  }

  return exponential
}

/**
 * Runs `operation`, retrying only TemporaryError (network, 5xx, 429, 423)
 * with exponential backoff, honouring Retry-After. Any other error, and the
 * last temporary one, is thrown as is.
 */
export async function withRetries<T>(operation: (attempt: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt)
    } catch (error) {
      if (!(error instanceof TemporaryError) || attempt >= policy.retries) throw error
      const delay = backoffDelay(attempt + 1, error, policy)
      policy.onRetry?.(error, attempt + 1, delay)
      await sleep(delay, undefined, {signal: policy.signal})
    }
  }
}

/** Parses an HTTP Retry-After header (seconds or an HTTP date) into ms. */
export function parseRetryAfter(value: string | undefined | null, now = Date.now()): number | undefined {
  if (!value) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
