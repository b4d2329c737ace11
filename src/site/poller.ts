/**
 * Per-local polling state, with no I/O: what happened decides the state and
 * how long to wait before the next poll. Failures back off exponentially
 * from the poll interval up to a cap; one success returns to the interval.
 */
export type LinkState = 'unknown' | 'up' | 'down'

export interface PollerState {
  state: LinkState
  /** Consecutive failures. */
  failures: number
}

export interface PollerConfig {
  pollMs: number
  maxBackoffMs: number
}

export interface PollStep {
  next: PollerState
  waitMs: number
  /** The state differs from before (up → down or down → up): worth a log line. */
  changed: boolean
}

export const INITIAL: PollerState = {state: 'unknown', failures: 0}

export function backoffMs(failures: number, config: PollerConfig): number {
  if (failures <= 0) return config.pollMs
  const base = Math.max(config.pollMs, 1)
  return Math.min(base * 2 ** Math.min(failures - 1, 30), Math.max(config.maxBackoffMs, base))
}

export function step(current: PollerState, ok: boolean, config: PollerConfig): PollStep {
  const next: PollerState = ok ? {state: 'up', failures: 0} : {state: 'down', failures: current.failures + 1}
  return {next, waitMs: backoffMs(next.failures, config), changed: next.state !== current.state}
}
