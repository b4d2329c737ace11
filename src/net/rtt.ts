/**
 * The retransmission timeout of RFC 6298, one estimator per destination.
 *
 * - Before any sample the RTO is `initialRtoMs` (1 s, §2.1).
 * - First sample R: SRTT = R, RTTVAR = R/2 (§2.2); later ones use
 *   alpha = 1/8 and beta = 1/4 (§2.3); RTO = SRTT + max(G, 4·RTTVAR).
 * - Each expiry doubles the RTO (§5.5) up to `maxRtoMs`; the backed-off
 *   value stays until a new valid sample arrives (§5.7 and Karn's rule: the
 *   caller only samples packets that were transmitted once).
 */

export interface RttOptions {
  /** RTO before the first sample, in ms. RFC 6298 §2.1: 1 s. */
  initialRtoMs?: number
  /**
   * Floor of the RTO, in ms. RFC 6298 §2.4 says 1 s SHOULD; we use 200 ms,
   * Linux TCP's TCP_RTO_MIN, because this transport runs on loopback and LANs
   * where RTTs are well under a millisecond and a 1 s floor would stall the
   * window for a whole second on every loss.
   */
  minRtoMs?: number
  /** Ceiling of the RTO, in ms. RFC 6298 §2.5 allows a cap of at least 60 s. */
  maxRtoMs?: number
  /** Clock granularity G, in ms: the tick of the socket's single timer. */
  granularityMs?: number
}

export const RTT_DEFAULTS: Required<RttOptions> = {initialRtoMs: 1000, minRtoMs: 200, maxRtoMs: 60_000, granularityMs: 10}

const ALPHA = 1 / 8
const BETA = 1 / 4
const K = 4

export class RttEstimator {
  private readonly options: Required<RttOptions>
  srtt: number | undefined
  rttvar: number | undefined
  rto: number

  constructor(options: RttOptions = {}) {
    this.options = {...RTT_DEFAULTS, ...stripUndefined(options)}
    this.rto = this.options.initialRtoMs
  }

  /** A round-trip time, in ms, from a packet that was transmitted exactly once. */
  sample(rttMs: number): void {
    if (this.srtt === undefined || this.rttvar === undefined) {
      this.srtt = rttMs
      this.rttvar = rttMs / 2
    } else {
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - rttMs)
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * rttMs
    }
    this.rto = this.clamp(this.srtt + Math.max(this.options.granularityMs, K * this.rttvar))
  }

  /** The timer expired: back off (RFC 6298 §5.5). */
  backoff(): void {
    this.rto = this.clamp(this.rto * 2)
  }

  /** Doubles a per-packet timeout within the same bounds. */
  backedOff(rtoMs: number): number {
    return this.clamp(rtoMs * 2)
  }

  private clamp(rtoMs: number): number {
    return Math.min(this.options.maxRtoMs, Math.max(this.options.minRtoMs, rtoMs))
  }
}

export function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
