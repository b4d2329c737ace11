/**
 * RFC 2136 dynamic updates: the zone section, the prerequisite checks of
 * §3.2 and the update-section prescan of §3.4.1, turned into a list of
 * ZoneEdits the caller journals and then applies.
 */
import {isAtOrBelow} from './names.js'
import {CLASS_ANY, CLASS_IN, CLASS_NONE, Rcode, sameData, type Message, type Rr} from './wire.js'
import {EDITABLE_TYPES, type Zone, type ZoneEdit} from './zone.js'

export type UpdatePlan = {rcode: number; edits: ZoneEdit[]}

const META_TYPES = new Set(['ANY', 'AXFR', 'IXFR', 'MAILA', 'MAILB', 'OPT', 'TSIG', 'TKEY'])

/** The zone an update names (§3.1), or an rcode. */
export function updateZone(message: Message, findZone: (origin: string) => Zone | undefined): Zone | number {
  if (message.questions.length !== 1) return Rcode.FORMERR
  const [section] = message.questions
  if (section.type !== 'SOA' || section.klass !== CLASS_IN) return Rcode.FORMERR
  return findZone(section.name) ?? Rcode.NOTAUTH
}

/** §3.2: checks the prerequisite section; NOERROR when every condition holds. */
export function checkPrerequisites(message: Message, zone: Zone): number {
  const valueSets = new Map<string, Rr[]>()
  for (const rr of message.answers) {
    if (!isAtOrBelow(rr.name, zone.origin)) return Rcode.NOTZONE
    if (rr.ttl !== 0) return Rcode.FORMERR
    if (rr.klass === CLASS_ANY || rr.klass === CLASS_NONE) {
      if (rr.data !== null) return Rcode.FORMERR
      const wanted = rr.klass === CLASS_ANY
      if (rr.type === 'ANY') {
        if (zone.has(rr.name) !== wanted) return wanted ? Rcode.NXDOMAIN : Rcode.YXDOMAIN
      } else if ((zone.rrset(rr.name, rr.type) !== undefined) !== wanted) {
        return wanted ? Rcode.NXRRSET : Rcode.YXRRSET
      }
    } else if (rr.klass === CLASS_IN) {
      if (rr.data === null || META_TYPES.has(rr.type)) return Rcode.FORMERR
      const key = `${rr.name}|${rr.type}`
      valueSets.set(key, [...(valueSets.get(key) ?? []), rr])
    } else return Rcode.FORMERR
  }
  for (const [key, wanted] of valueSets) {
    const [name, type] = key.split('|')
    const actual = zone.rrset(name, type) ?? []
    const same =
      actual.length === dedupe(wanted).length && wanted.every((rr) => actual.some((other) => sameData(other, rr)))
    if (!same) return Rcode.NXRRSET
  }
  return Rcode.NOERROR
}

function dedupe(records: Rr[]): Rr[] {
  return records.filter((rr, index) => records.findIndex((other) => sameData(other, rr)) === index)
}

/** §3.4.1: checks the update section and turns it into edits. */
export function planEdits(message: Message, zone: Zone): UpdatePlan {
  const edits: ZoneEdit[] = []
  for (const rr of message.authorities) {
    if (!isAtOrBelow(rr.name, zone.origin)) return {rcode: Rcode.NOTZONE, edits: []}
    if (rr.klass === CLASS_IN) {
      if (rr.data === null || META_TYPES.has(rr.type)) return {rcode: Rcode.FORMERR, edits: []}
      if (!EDITABLE_TYPES.has(rr.type)) return {rcode: Rcode.REFUSED, edits: []}
      edits.push({op: 'add', rr: {...rr, klass: CLASS_IN}})
    } else if (rr.klass === CLASS_ANY) {
      if (rr.ttl !== 0 || rr.data !== null || (rr.type !== 'ANY' && META_TYPES.has(rr.type))) {
        return {rcode: Rcode.FORMERR, edits: []}
      }
      edits.push(rr.type === 'ANY' ? {op: 'delete-name', name: rr.name} : {op: 'delete-rrset', name: rr.name, type: rr.type})
    } else if (rr.klass === CLASS_NONE) {
      if (rr.ttl !== 0 || rr.data === null || META_TYPES.has(rr.type)) return {rcode: Rcode.FORMERR, edits: []}
      edits.push({op: 'delete-rr', rr: {...rr, klass: CLASS_IN}})
    } else return {rcode: Rcode.FORMERR, edits: []}
  }
  return {rcode: Rcode.NOERROR, edits}
}
