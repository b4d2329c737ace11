/**
 * The authoritative side: the zones a server holds, the answers it builds
 * from them (AA, negative answers with the SOA, CNAME chasing inside the
 * zone, referrals with glue), and dynamic updates written to each zone's
 * journal before they are applied.
 */
import {Journal, applyEdits} from './journal.js'
import {isAtOrBelow, labelCount} from './names.js'
import {checkPrerequisites, planEdits, updateZone} from './update.js'
import {Rcode, type Message, type MxData, type Question, type Rr, type SrvData} from './wire.js'
import {Zone} from './zone.js'

/** CNAME links followed inside one zone before giving up (BIND uses 16 as well). */
const MAX_CNAME_CHAIN = 16

interface HeldZone {
  zone: Zone
  journal?: Journal
  /** Serializes updates to this zone: each waits for the one before. */
  queue: Promise<unknown>
}

export class Authority {
  private readonly held = new Map<string, HeldZone>()
  /** Bumped on every change, so answer caches keyed on it stay correct. */
  generation = 0

  /** Loads a master file and replays its journal; returns the zone. */
  loadFile(file: string): Zone {
    const zone = Zone.fromFile(file)
    const journal = Journal.besideZone(file)
    journal.replay(zone)
    this.hold(zone, journal)
    return zone
  }

  /** Serves an in-memory zone; updates to it are not persisted. */
  hold(zone: Zone, journal?: Journal): void {
    if (this.held.has(zone.origin)) throw new Error(`zone ${zone.origin} is loaded twice`)
    this.held.set(zone.origin, {zone, journal, queue: Promise.resolve()})
    this.generation++
  }

  get size(): number {
    return this.held.size
  }

  /** Every zone held, in load order. */
  zones(): Zone[] {
    return [...this.held.values()].map((held) => held.zone)
  }

  zone(origin: string): Zone | undefined {
    return this.held.get(origin)?.zone
  }

  /** The deepest zone we hold that contains `name`. */
  zoneFor(name: string): Zone | undefined {
    let best: Zone | undefined
    for (const {zone} of this.held.values()) {
      if (isAtOrBelow(name, zone.origin) && (!best || labelCount(zone.origin) > labelCount(best.origin))) best = zone
    }
    return best
  }

  /**
   * Fills `reply` with our answer to `question`. Returns false (reply
   * untouched) when the name is in none of our zones.
   */
  answer(question: Question, reply: Message): boolean {
    const zone = this.zoneFor(question.name)
    if (!zone) return false
    const chain: Rr[] = []
    const seen = new Set<string>()
    let name = question.name
    reply.aa = true
    for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
      seen.add(name)
      const found = zone.find(name, question.type)
      switch (found.kind) {
        case 'answer':
          reply.answers = [...chain, ...found.records]
          reply.additionals = additionalAddresses(zone, found.records)
          return true
        case 'cname': {
          chain.push(found.record)
          const target = found.record.data as string
          if (!isAtOrBelow(target, zone.origin) || seen.has(target)) break
          name = target
          continue
        }
        case 'referral':
          reply.aa = chain.length > 0
          reply.authorities = found.ns
          reply.additionals = found.glue
          break
        case 'nxdomain':
          reply.rcode = Rcode.NXDOMAIN
          reply.authorities = [zone.negativeSoa()]
          break
        case 'nodata':
          reply.authorities = [zone.negativeSoa()]
          break
      }
      break
    }
    reply.answers = chain
    return true
  }

  /**
   * Handles an UPDATE already allowed by address: checks it, writes it to the
   * journal (fsync), then applies it. Resolves to the rcode to send.
   */
  async update(message: Message): Promise<number> {
    const zone = updateZone(message, (origin) => this.zone(origin))
    if (typeof zone === 'number') return zone
    const held = this.held.get(zone.origin)!
    const run = held.queue.then(async () => {
      const prerequisites = checkPrerequisites(message, zone)
      if (prerequisites !== Rcode.NOERROR) return prerequisites
      const plan = planEdits(message, zone)
      if (plan.rcode !== Rcode.NOERROR || plan.edits.length === 0) return plan.rcode
      await held.journal?.append(plan.edits)
      applyEdits(zone, plan.edits)
      this.generation++
      return Rcode.NOERROR
    })
    held.queue = run.catch(() => undefined)
    return run
  }

  async close(): Promise<void> {
    for (const held of this.held.values()) {
      await held.queue
      await held.journal?.close()
    }
  }
}

/** Addresses the zone holds for the targets of NS, MX and SRV answers. */
function additionalAddresses(zone: Zone, records: Rr[]): Rr[] {
  const targets = new Set<string>()
  for (const rr of records) {
    if (rr.type === 'NS') targets.add(rr.data as string)
    else if (rr.type === 'SRV') targets.add((rr.data as SrvData).target)
    else if (rr.type === 'MX') targets.add((rr.data as MxData).exchange)
  }
  return [...targets].filter((target) => zone.cutAbove(target) === undefined).flatMap((target) => zone.addresses(target))
}
