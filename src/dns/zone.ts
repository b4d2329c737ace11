/**
 * One zone in memory: its records by owner name and type, the lookup of
 * RFC 1034 §4.3.2 (delegations, exact matches, CNAMEs, empty non-terminals,
 * NXDOMAIN), and the edits RFC 2136 updates make.
 */
import {readFileSync} from 'node:fs'

import {parseMasterFile, ZoneParseError} from './master-file.js'
import {isAtOrBelow, namesBetween, parentOf} from './names.js'
import {CLASS_IN, sameData, type Rr, type SoaData} from './wire.js'

/** One edit of a zone, as an update applies it and the journal records it. */
export type ZoneEdit =
  | {op: 'add'; rr: Rr}
  | {op: 'delete-rr'; rr: Rr}
  | {op: 'delete-rrset'; name: string; type: string}
  | {op: 'delete-name'; name: string}

/** What a zone says about one name and type. */
export type ZoneAnswer =
  | {kind: 'answer'; records: Rr[]}
  | {kind: 'cname'; record: Rr}
  | {kind: 'referral'; cut: string; ns: Rr[]; glue: Rr[]}
  | {kind: 'nodata'}
  | {kind: 'nxdomain'}

/** The types an update may add; their data round-trips through the journal as JSON. */
export const EDITABLE_TYPES = new Set(['A', 'AAAA', 'NS', 'CNAME', 'PTR', 'MX', 'SRV', 'TXT', 'SOA'])

export class Zone {
  /** name → type → records (all of one TTL). */
  private readonly nodes = new Map<string, Map<string, Rr[]>>()
  /** Every name that exists, owners and the empty non-terminals above them. */
  private existing?: Set<string>

  constructor(
    readonly origin: string,
    records: Rr[],
  ) {
    for (const rr of records) {
      if (!isAtOrBelow(rr.name, origin)) throw new Error(`${rr.name} is outside the zone ${origin}`)
      this.insert(rr)
    }
    const soa = this.nodes.get(origin)?.get('SOA')
    if (!soa || soa.length !== 1) throw new Error(`zone ${origin} needs exactly one SOA at its apex`)
    if (!this.nodes.get(origin)?.get('NS')) throw new Error(`zone ${origin} has no NS records at its apex`)
  }

  /** Reads a master file; the zone's origin is the owner of its SOA. */
  static fromFile(file: string): Zone {
    const records = parseMasterFile(readFileSync(file, 'utf8'), {file})
    const soa = records.find((rr) => rr.type === 'SOA')
    if (!soa) throw new ZoneParseError('no SOA record', file, 1)
    return new Zone(soa.name, records)
  }

  get soa(): Rr {
    return this.nodes.get(this.origin)!.get('SOA')![0]
  }

  /** The SOA for a negative answer: TTL is the lesser of its own and MINIMUM (RFC 2308 §3). */
  negativeSoa(): Rr {
    const soa = this.soa
    return {...soa, ttl: Math.min(soa.ttl, (soa.data as SoaData).minimum)}
  }

  rrset(name: string, type: string): Rr[] | undefined {
    return this.nodes.get(name)?.get(type)
  }

  has(name: string): boolean {
    return this.nodes.has(name)
  }

  /** True if the name exists: owns records or has names below it. */
  exists(name: string): boolean {
    if (!this.existing) {
      this.existing = new Set()
      for (const owner of this.nodes.keys()) {
        for (let n: string | undefined = owner; n !== undefined && isAtOrBelow(n, this.origin); n = parentOf(n)) {
          if (this.existing.has(n)) break
          this.existing.add(n)
        }
      }
    }
    return this.existing.has(name)
  }

  /** Every record, apex first, for tests and dumps. */
  records(): Rr[] {
    return [...this.nodes.values()].flatMap((types) => [...types.values()].flat())
  }

  /** The deepest delegation at or above `name` (below the apex), if any. */
  cutAbove(name: string): string | undefined {
    for (const n of namesBetween(name, this.origin)) if (this.nodes.get(n)?.has('NS')) return n
    return undefined
  }

  /** A and AAAA records of `name` held in this zone, glue included. */
  addresses(name: string): Rr[] {
    if (!isAtOrBelow(name, this.origin)) return []
    const types = this.nodes.get(name)
    return [...(types?.get('A') ?? []), ...(types?.get('AAAA') ?? [])]
  }

  /** RFC 1034 §4.3.2 step 3, for a name inside this zone. */
  find(name: string, type: string): ZoneAnswer {
    const cut = this.cutAbove(name)
    if (cut !== undefined) {
      const ns = this.nodes.get(cut)!.get('NS')!
      const glue = ns.flatMap((record) => this.addresses(record.data as string))
      return {kind: 'referral', cut, ns, glue}
    }
    const types = this.nodes.get(name)
    if (!types) return this.exists(name) ? {kind: 'nodata'} : {kind: 'nxdomain'}
    if (type === 'ANY') return {kind: 'answer', records: [...types.values()].flat()}
    const exact = types.get(type)
    if (exact) return {kind: 'answer', records: exact}
    const cname = types.get('CNAME')
    if (cname) return {kind: 'cname', record: cname[0]}
    return {kind: 'nodata'}
  }

  /** Applies one edit by RFC 2136 §3.4.2's rules; returns whether the zone changed. */
  apply(edit: ZoneEdit): boolean {
    switch (edit.op) {
      case 'add':
        return this.add(edit.rr)
      case 'delete-rr':
        return this.deleteRr(edit.rr)
      case 'delete-rrset':
        if (edit.name === this.origin && (edit.type === 'SOA' || edit.type === 'NS')) return false
        return this.removeRrset(edit.name, edit.type)
      case 'delete-name': {
        const types = this.nodes.get(edit.name)
        if (!types) return false
        let changed = false
        for (const type of [...types.keys()]) {
          if (edit.name === this.origin && (type === 'SOA' || type === 'NS')) continue
          changed = this.removeRrset(edit.name, type) || changed
        }
        return changed
      }
    }
  }

  /** Raises the SOA serial by one (RFC 1982 arithmetic), as after every changing update. */
  bumpSerial(): void {
    const soa = this.soa
    const data = soa.data as SoaData
    this.nodes.get(this.origin)!.set('SOA', [{...soa, data: {...data, serial: (data.serial + 1) % 2 ** 32}}])
  }

  private add(rr: Rr): boolean {
    const types = this.nodes.get(rr.name)
    if (rr.type === 'SOA') {
      if (rr.name !== this.origin) return false
      const current = this.soa.data as SoaData
      if (!serialGreater((rr.data as SoaData).serial, current.serial)) return false
      types!.set('SOA', [{...rr, klass: CLASS_IN}])
      return true
    }
    if (types) {
      const hasCname = types.has('CNAME')
      const hasOther = [...types.keys()].some((type) => type !== 'CNAME')
      if (rr.type === 'CNAME' ? hasOther : hasCname) return false
    }
    const existing = types?.get(rr.type)
    const duplicate = existing?.find((other) => sameData(other, rr))
    if (duplicate && existing!.every((other) => other.ttl === rr.ttl)) return false
    if (rr.type === 'CNAME' && existing) {
      types!.set('CNAME', [{...rr, klass: CLASS_IN}])
      return true
    }
    if (!duplicate) this.insert(rr)
    // RFC 2181 §5.2: one TTL per RRset; the newest wins.
    this.nodes.get(rr.name)!.set(
      rr.type,
      this.nodes.get(rr.name)!.get(rr.type)!.map((other) => ({...other, ttl: rr.ttl})),
    )
    return true
  }

  private deleteRr(rr: Rr): boolean {
    if (rr.type === 'SOA') return false
    const existing = this.nodes.get(rr.name)?.get(rr.type)
    if (!existing) return false
    const kept = existing.filter((other) => !sameData(other, rr))
    if (kept.length === existing.length) return false
    if (rr.name === this.origin && rr.type === 'NS' && kept.length === 0) return false
    if (kept.length === 0) return this.removeRrset(rr.name, rr.type)
    this.nodes.get(rr.name)!.set(rr.type, kept)
    return true
  }

  private insert(rr: Rr): void {
    let types = this.nodes.get(rr.name)
    if (!types) {
      types = new Map()
      this.nodes.set(rr.name, types)
      this.existing = undefined
    }
    const list = types.get(rr.type) ?? []
    if (!list.some((other) => sameData(other, rr))) list.push({...rr, klass: CLASS_IN})
    types.set(rr.type, list)
  }

  private removeRrset(name: string, type: string): boolean {
    const types = this.nodes.get(name)
    if (!types?.delete(type)) return false
    if (types.size === 0) {
      this.nodes.delete(name)
      this.existing = undefined
    }
    return true
  }
}

/** RFC 1982 serial-number comparison: is `a` after `b`? */
function serialGreater(a: number, b: number): boolean {
  return a !== b && ((a > b && a - b < 2 ** 31) || (a < b && b - a > 2 ** 31))
}
