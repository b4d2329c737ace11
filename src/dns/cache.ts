/**
 * The resolver's cache: RRsets and negative answers (RFC 2308), each kept for
 * its TTL and handed out with the TTL counted down. Bounded in size; the
 * oldest entries go first.
 */
import {parentOf} from './names.js'
import type {Rr, SoaData} from './wire.js'

export interface DnsCacheOptions {
  /** Most entries held (RRsets plus negative answers); default 10000. */
  maxEntries?: number
  /** TTLs above this are cut down to it (seconds); default one day. */
  maxTtl?: number
  /** Negative answers are kept at most this long (seconds; RFC 2308 §5 suggests 1-3 hours); default 3 hours. */
  maxNegativeTtl?: number
  /** The clock, in milliseconds; tests may replace it. */
  now?: () => number
}

export type NegativeKind = 'nxdomain' | 'nodata'

interface Entry {
  records: Rr[]
  /** When it was stored (ms) and for how long (s). */
  storedAt: number
  ttl: number
  negative?: NegativeKind
}

export interface CachedNegative {
  kind: NegativeKind
  /** The SOA that came with it, TTL counted down; empty if none came. */
  soa: Rr[]
}

export interface CachedDelegation {
  zone: string
  ns: Rr[]
  glue: Rr[]
}

const NXDOMAIN_TYPE = '*NXDOMAIN'

export class DnsCache {
  private readonly entries = new Map<string, Entry>()
  private readonly maxEntries: number
  private readonly maxTtl: number
  private readonly maxNegativeTtl: number
  private readonly now: () => number

  constructor(options: DnsCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000
    this.maxTtl = options.maxTtl ?? 86_400
    this.maxNegativeTtl = options.maxNegativeTtl ?? 10_800
    this.now = options.now ?? Date.now
  }

  get size(): number {
    return this.entries.size
  }

  clear(): void {
    this.entries.clear()
  }

  /** Stores one RRset (records of one name and type); its TTL is the least of theirs. */
  putRrset(records: Rr[]): void {
    if (records.length === 0) return
    const ttl = Math.min(this.maxTtl, ...records.map((rr) => rr.ttl))
    if (ttl <= 0) return
    const {name, type} = records[0]
    this.set(`${name}|${type}`, {records: records.map((rr) => ({...rr, ttl})), storedAt: this.now(), ttl})
  }

  /** Stores a negative answer; its TTL is min(SOA TTL, SOA MINIMUM) (RFC 2308 §5). Nothing is kept without an SOA. */
  putNegative(name: string, type: string, kind: NegativeKind, soa: Rr | undefined): void {
    if (!soa) return
    const ttl = Math.min(this.maxNegativeTtl, soa.ttl, (soa.data as SoaData).minimum)
    if (ttl <= 0) return
    const key = kind === 'nxdomain' ? `${name}|${NXDOMAIN_TYPE}` : `${name}|${type}`
    this.set(key, {records: [{...soa, ttl}], storedAt: this.now(), ttl, negative: kind})
  }

  /** A live RRset with its TTL counted down. */
  getRrset(name: string, type: string): Rr[] | undefined {
    const found = this.live(`${name}|${type}`)
    return found && !found.entry.negative ? found.records : undefined
  }

  /** A live negative answer for this name and type (an NXDOMAIN covers every type). */
  getNegative(name: string, type: string): CachedNegative | undefined {
    const nx = this.live(`${name}|${NXDOMAIN_TYPE}`)
    if (nx) return {kind: 'nxdomain', soa: nx.records}
    const nodata = this.live(`${name}|${type}`)
    return nodata?.entry.negative ? {kind: 'nodata', soa: nodata.records} : undefined
  }

  /** The deepest cached delegation at or above `name`, with whatever addresses we hold for its servers. */
  closestDelegation(name: string): CachedDelegation | undefined {
    for (let zone: string | undefined = name; zone !== undefined; zone = parentOf(zone)) {
      const ns = this.getRrset(zone, 'NS')
      if (!ns) continue
      const glue = ns.flatMap((rr) => [
        ...(this.getRrset(rr.data as string, 'A') ?? []),
        ...(this.getRrset(rr.data as string, 'AAAA') ?? []),
      ])
      return {zone, ns, glue}
    }
    return undefined
  }

  private set(key: string, entry: Entry): void {
    this.entries.delete(key)
    this.entries.set(key, entry)
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!)
  }

  private live(key: string): {entry: Entry; records: Rr[]} | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    const remaining = entry.ttl - Math.floor((this.now() - entry.storedAt) / 1000)
    if (remaining <= 0) {
      this.entries.delete(key)
      return undefined
    }
    return {entry, records: entry.records.map((rr) => ({...rr, ttl: remaining}))}
  }
}
