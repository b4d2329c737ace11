/**
 * The iterative resolver (RFC 1034 §5.3.3): start at the closest delegation
 * the cache knows (or the roots), ask with RD clear, follow referrals and
 * their glue, resolve the names of glueless servers, chase CNAMEs, and cache
 * every answer and negative answer by TTL.
 *
 * Glue carries addresses, not ports: every server found below the roots is
 * asked on the port of the first root.
 */
import {DnsCache} from './cache.js'
import {isAtOrBelow, labelCount, parentOf, ROOT} from './names.js'
import {DnsClient, formatEndpoint, QueryTimeoutError, type Endpoint} from './transport.js'
import {makeQuery, Rcode, RCODE_NAMES, type Message, type Rr} from './wire.js'

export interface ResolverOptions {
  /** The root servers; every other server is asked on the first one's port. */
  roots: Endpoint[]
  cache?: DnsCache
  /** One upstream query's timeout in ms; default 1000. */
  queryTimeoutMs?: number
  /** One whole resolution's time limit in ms; default 5000. */
  resolveTimeoutMs?: number
  /** Nested resolutions (CNAME targets, glueless server names); default 6. */
  maxDepth?: number
  /** Upstream queries one resolution may send; default 40. */
  maxQueries?: number
  /** Receives one line per upstream query. */
  log?: (line: string) => void
}

export interface Resolution {
  rcode: number
  answers: Rr[]
  authorities: Rr[]
  additionals: Rr[]
}

export interface ResolverStats {
  /** Queries sent upstream, UDP and TCP together. */
  upstreamQueries: number
  /** Of those, the TCP retries of truncated answers. */
  upstreamTcp: number
  upstreamTimeouts: number
  /** Recursive queries answered without asking upstream. */
  cacheHits: number
  /** Recursive queries that needed at least one upstream query. */
  cacheMisses: number
}

/** A resolution that cannot finish: the client gets SERVFAIL. */
class ResolveFailure extends Error {}

type Outcome =
  | {kind: 'answer'; records: Rr[]}
  | {kind: 'cname'; record: Rr}
  | {kind: 'negative'; nxdomain: boolean; soa: Rr[]}

type Step = Outcome | {kind: 'referral'; cut: string; ns: Rr[]; glue: Rr[]}

interface Budget {
  deadline: number
  queries: number
  /** name|type pairs being resolved now, to catch loops. */
  active: Set<string>
}

const MAX_CNAME_CHAIN = 12
const MAX_REFERRALS = 30
const MAX_GLUELESS_LOOKUPS = 3

export class Resolver {
  readonly cache: DnsCache
  readonly stats: ResolverStats = {upstreamQueries: 0, upstreamTcp: 0, upstreamTimeouts: 0, cacheHits: 0, cacheMisses: 0}
  private readonly client = new DnsClient()
  private readonly inflight = new Map<string, Promise<Resolution>>()
  private readonly upstreamPort: number
  private readonly queryTimeoutMs: number
  private readonly resolveTimeoutMs: number
  private readonly maxDepth: number
  private readonly maxQueries: number

  constructor(private readonly options: ResolverOptions) {
    if (options.roots.length === 0) throw new Error('a resolver needs at least one root server')
    this.cache = options.cache ?? new DnsCache()
    this.upstreamPort = options.roots[0].port
    this.queryTimeoutMs = options.queryTimeoutMs ?? 1000
    this.resolveTimeoutMs = options.resolveTimeoutMs ?? 5000
    this.maxDepth = options.maxDepth ?? 6
    this.maxQueries = options.maxQueries ?? 40
  }

  /** Resolves with recursion (RD set). Identical queries in flight share one resolution. */
  resolve(name: string, type: string): Promise<Resolution> {
    const key = `${name}|${type}`
    const running = this.inflight.get(key)
    if (running) return running
    const budget: Budget = {deadline: Date.now() + this.resolveTimeoutMs, queries: 0, active: new Set()}
    const work = this.lookup(name, type, budget, 0)
      .catch((error: unknown): Resolution => {
        if (!(error instanceof ResolveFailure)) this.options.log?.(`resolver error for ${name} ${type}: ${String(error)}`)
        else this.options.log?.(`SERVFAIL for ${name} ${type}: ${error.message}`)
        return {rcode: Rcode.SERVFAIL, answers: [], authorities: [], additionals: []}
      })
      .finally(() => {
        this.inflight.delete(key)
        if (budget.queries === 0) this.stats.cacheHits++
        else this.stats.cacheMisses++
      })
    this.inflight.set(key, work)
    return work
  }

  /**
   * Answers without recursion (RD clear): from the cache, else the closest
   * cached referral, else nothing. Never asks upstream.
   */
  fromCacheOnly(name: string, type: string): Resolution {
    const {chain, end, next} = this.walkCache(name, type)
    if (end) return this.finish(chain, end)
    const delegation = this.cache.closestDelegation(next)
    return {rcode: Rcode.NOERROR, answers: chain, authorities: delegation?.ns ?? [], additionals: delegation?.glue ?? []}
  }

  close(): void {
    this.client.close()
  }

  private async lookup(name: string, type: string, budget: Budget, depth: number): Promise<Resolution> {
    if (depth > this.maxDepth) throw new ResolveFailure(`nested deeper than ${this.maxDepth}`)
    const key = `${name}|${type}`
    if (budget.active.has(key)) throw new ResolveFailure(`loop resolving ${name} ${type}`)
    budget.active.add(key)
    try {
      const {chain, end, next} = this.walkCache(name, type)
      if (end) return this.finish(chain, end)
      const outcome = await this.iterate(next, type, budget, depth)
      if (outcome.kind !== 'cname') return this.finish(chain, outcome)
      if (chain.length >= MAX_CNAME_CHAIN) throw new ResolveFailure('CNAME chain too long')
      const rest = await this.lookup(outcome.record.data as string, type, budget, depth + 1)
      return {...rest, answers: [...chain, outcome.record, ...rest.answers]}
    } finally {
      budget.active.delete(key)
    }
  }

  /** Follows cached CNAMEs from `name`; stops at a cached outcome or at the first name the cache cannot answer. */
  private walkCache(name: string, type: string): {chain: Rr[]; end?: Outcome; next: string} {
    const chain: Rr[] = []
    let current = name
    for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
      const negative = this.cache.getNegative(current, type)
      if (negative) return {chain, end: {kind: 'negative', nxdomain: negative.kind === 'nxdomain', soa: negative.soa}, next: current}
      const records = type === 'ANY' ? undefined : this.cache.getRrset(current, type)
      if (records) return {chain, end: {kind: 'answer', records}, next: current}
      const cname = type === 'CNAME' ? undefined : this.cache.getRrset(current, 'CNAME')?.[0]
      if (!cname || chain.some((rr) => rr.name === cname.name)) break
      chain.push(cname)
      current = cname.data as string
    }
    return {chain, next: current}
  }

  private finish(chain: Rr[], outcome: Outcome): Resolution {
    if (outcome.kind === 'answer') return {rcode: Rcode.NOERROR, answers: [...chain, ...outcome.records], authorities: [], additionals: []}
    if (outcome.kind === 'cname') return {rcode: Rcode.NOERROR, answers: [...chain, outcome.record], authorities: [], additionals: []}
    return {rcode: outcome.nxdomain ? Rcode.NXDOMAIN : Rcode.NOERROR, answers: chain, authorities: outcome.soa, additionals: []}
  }

  /** Asks from the closest known delegation down until a server answers for `name`. */
  private async iterate(name: string, type: string, budget: Budget, depth: number): Promise<Outcome> {
    let {zone, servers} = this.startingPoint(name)
    for (let referrals = 0; referrals < MAX_REFERRALS; referrals++) {
      const response = await this.ask(servers, name, type, budget)
      const step = this.classify(response, name, type, zone)
      if (step.kind !== 'referral') return step
      this.cache.putRrset(step.ns)
      for (const rrset of groupRrsets(step.glue)) this.cache.putRrset(rrset)
      zone = step.cut
      servers = await this.serversFor(step.ns, step.glue, budget, depth)
    }
    throw new ResolveFailure(`more than ${MAX_REFERRALS} referrals`)
  }

  /** The deepest cached delegation above `name` whose servers' addresses we know, else the roots. */
  private startingPoint(name: string): {zone: string; servers: Endpoint[]} {
    for (let zone: string | undefined = name; zone !== undefined && zone !== ROOT; zone = parentOf(zone)) {
      const ns = this.cache.getRrset(zone, 'NS')
      if (!ns) continue
      const servers = this.cachedAddresses(ns)
      if (servers.length > 0) return {zone, servers}
    }
    return {zone: ROOT, servers: this.options.roots}
  }

  private cachedAddresses(ns: Rr[]): Endpoint[] {
    return ns
      .flatMap((rr) => this.cache.getRrset(rr.data as string, 'A') ?? [])
      .map((rr) => ({host: rr.data as string, port: this.upstreamPort}))
  }

  /** Addresses of a delegation's servers: from glue, the cache, or by resolving their names. */
  private async serversFor(ns: Rr[], glue: Rr[], budget: Budget, depth: number): Promise<Endpoint[]> {
    const fromGlue = glue.filter((rr) => rr.type === 'A').map((rr) => ({host: rr.data as string, port: this.upstreamPort}))
    const known = [...fromGlue, ...this.cachedAddresses(ns)]
    if (known.length > 0) return dedupeEndpoints(known)
    for (const rr of ns.slice(0, MAX_GLUELESS_LOOKUPS)) {
      try {
        const found = await this.lookup(rr.data as string, 'A', budget, depth + 1)
        const addresses = found.answers.filter((a) => a.type === 'A').map((a) => ({host: a.data as string, port: this.upstreamPort}))
        if (addresses.length > 0) return addresses
      } catch (error) {
        if (!(error instanceof ResolveFailure)) throw error
      }
    }
    throw new ResolveFailure(`no address for any server of ${ns[0]?.name ?? '?'}`)
  }

  /** Sends the query to each server in turn until one gives a usable answer; retries over TCP when truncated. */
  private async ask(servers: Endpoint[], name: string, type: string, budget: Budget): Promise<Message> {
    const query = makeQuery(0, name, type, {rd: false})
    for (const server of servers) {
      try {
        let answer = await this.send(server, query, budget, 'udp')
        if (answer.tc) answer = await this.send(server, query, budget, 'tcp')
        if (answer.rcode === Rcode.NOERROR || answer.rcode === Rcode.NXDOMAIN) return answer
      } catch (error) {
        if (error instanceof ResolveFailure) throw error
        if (error instanceof QueryTimeoutError) this.stats.upstreamTimeouts++
      }
    }
    throw new ResolveFailure(`no server answered ${name} ${type}`)
  }

  private async send(server: Endpoint, query: Message, budget: Budget, transport: 'udp' | 'tcp'): Promise<Message> {
    const remaining = budget.deadline - Date.now()
    if (remaining <= 0) throw new ResolveFailure('time limit reached')
    if (budget.queries >= this.maxQueries) throw new ResolveFailure(`more than ${this.maxQueries} upstream queries`)
    budget.queries++
    this.stats.upstreamQueries++
    if (transport === 'tcp') this.stats.upstreamTcp++
    const timeout = Math.min(this.queryTimeoutMs, remaining)
    const [q] = query.questions
    try {
      const answer = transport === 'udp' ? await this.client.udp(server, query, timeout) : await this.client.tcp(server, query, timeout)
      this.options.log?.(
        `upstream #${this.stats.upstreamQueries} ${transport} ${formatEndpoint(server)} ${q.name} ${q.type} -> ${RCODE_NAMES[answer.rcode] ?? answer.rcode}${answer.tc ? ' TC' : ''}`,
      )
      return answer
    } catch (error) {
      this.options.log?.(`upstream #${this.stats.upstreamQueries} ${transport} ${formatEndpoint(server)} ${q.name} ${q.type} -> ${(error as Error).message}`)
      throw error
    }
  }

  /** Reads one upstream response: an answer, a CNAME, a referral, or a negative answer. Caches what it may. */
  private classify(response: Message, name: string, type: string, zone: string): Step {
    const inBailiwick = (rr: Rr): boolean => isAtOrBelow(rr.name, zone)
    for (const rrset of groupRrsets(response.answers.filter(inBailiwick))) this.cache.putRrset(rrset)
    const soa = response.authorities.find((rr) => rr.type === 'SOA' && inBailiwick(rr) && isAtOrBelow(name, rr.name))

    const exact = response.answers.filter((rr) => rr.name === name && (rr.type === type || type === 'ANY') && inBailiwick(rr))
    if (exact.length > 0) return {kind: 'answer', records: exact}
    const cname = response.answers.find((rr) => rr.name === name && rr.type === 'CNAME' && inBailiwick(rr))
    if (cname) return {kind: 'cname', record: cname}

    if (response.rcode === Rcode.NXDOMAIN) {
      this.cache.putNegative(name, type, 'nxdomain', soa)
      return {kind: 'negative', nxdomain: true, soa: soa ? [soaForNegative(soa)] : []}
    }
    const ns = response.authorities.filter((rr) => rr.type === 'NS')
    const cut = ns[0]?.name
    const isReferral =
      !response.aa &&
      cut !== undefined &&
      ns.every((rr) => rr.name === cut) &&
      isAtOrBelow(name, cut) &&
      isAtOrBelow(cut, zone) &&
      labelCount(cut) > labelCount(zone)
    if (isReferral) {
      const targets = new Set(ns.map((rr) => rr.data as string))
      const glue = response.additionals.filter((rr) => (rr.type === 'A' || rr.type === 'AAAA') && targets.has(rr.name) && inBailiwick(rr))
      return {kind: 'referral', cut, ns, glue}
    }
    if (!response.aa && !soa) throw new ResolveFailure(`lame answer for ${name} ${type} from the servers of ${zone}`)
    this.cache.putNegative(name, type, 'nodata', soa)
    return {kind: 'negative', nxdomain: false, soa: soa ? [soaForNegative(soa)] : []}
  }
}

function soaForNegative(soa: Rr): Rr {
  const minimum = (soa.data as {minimum: number}).minimum
  return {...soa, ttl: Math.min(soa.ttl, minimum)}
}

/** Splits records into RRsets (same name and type), keeping order. */
function groupRrsets(records: Rr[]): Rr[][] {
  const sets = new Map<string, Rr[]>()
  for (const rr of records) {
    const key = `${rr.name}|${rr.type}`
    sets.set(key, [...(sets.get(key) ?? []), rr])
  }
  return [...sets.values()]
}

function dedupeEndpoints(endpoints: Endpoint[]): Endpoint[] {
  const seen = new Set<string>()
  return endpoints.filter((endpoint) => {
    const key = formatEndpoint(endpoint)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
