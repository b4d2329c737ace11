/**
 * Anti-entropy: the router asks every live server for its per-bucket digests
 * (XOR of a 64-bit fingerprint of each key's name, version and tombstone
 * flag), finds the buckets where replicas of the same preference list
 * disagree, lists those buckets' headers on each replica, and copies the
 * newest version of every key to the replicas that lack it. Replicas thus
 * converge without any read.
 */
import type {RespValue} from './client.js'
import type {Membership} from './membership.js'
import {parseHeaderList, type Replicas} from './replicas.js'
import {BUCKETS, type Ring} from './ring.js'
import {newer, type Versioned} from './versions.js'

const BUCKETS_PER_SCAN = 64
const COPIES_IN_FLIGHT = 64

export interface AntiEntropyStats {
  rounds: number
  bucketsRepaired: number
  keysCopied: number
}

export class AntiEntropy {
  readonly stats: AntiEntropyStats = {rounds: 0, bucketsRepaired: 0, keysCopied: 0}
  private running: Promise<void> | null = null

  constructor(
    private readonly ring: Ring,
    private readonly members: Membership,
    private readonly replicas: Replicas,
  ) {}

  /** Runs one round (or joins the one under way). */
  round(): Promise<void> {
    if (!this.running) {
      this.running = this.run().finally(() => (this.running = null))
    }
    return this.running
  }

  private async run(): Promise<void> {
    const up = this.members.members.filter((member) => member.state === 'up').map((member) => member.number)
    if (up.length < 2) return
    const digests = new Map<number, Buffer>()
    await Promise.all(
      up.map(async (server) => {
        try {
          const reply = await this.members.call(server, 'XDIGEST')
          if (Buffer.isBuffer(reply) && reply.length === BUCKETS * 8) digests.set(server, reply)
        } catch {
          // down: left out of this round
        }
      }),
    )
    const groups = new Map<string, {servers: number[]; buckets: number[]}>()
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      const servers = this.ring.preference(bucket).filter((server) => digests.has(server))
      if (servers.length < 2) continue
      const first = digests.get(servers[0])!.subarray(bucket * 8, bucket * 8 + 8)
      if (servers.every((server) => digests.get(server)!.subarray(bucket * 8, bucket * 8 + 8).equals(first))) continue
      const id = servers.join(',')
      if (!groups.has(id)) groups.set(id, {servers, buckets: []})
      groups.get(id)!.buckets.push(bucket)
    }
    for (const {servers, buckets} of groups.values()) {
      for (let i = 0; i < buckets.length; i += BUCKETS_PER_SCAN) {
        await this.repair(servers, buckets.slice(i, i + BUCKETS_PER_SCAN))
      }
    }
    this.stats.rounds++
  }

  private async repair(servers: number[], buckets: number[]): Promise<void> {
    const held = new Map<number, Map<string, Versioned>>()
    const newest = new Map<string, Versioned & {key: Buffer; holder: number}>()
    await Promise.all(
      servers.map(async (server) => {
        let reply: RespValue
        try {
          reply = await this.members.call(server, 'XBUCKETS', ...buckets)
        } catch {
          return
        }
        const mine = new Map<string, Versioned>()
        held.set(server, mine)
        for (const entry of parseHeaderList(reply)) {
          const id = entry.key.toString('latin1')
          mine.set(id, entry)
          if (newer(entry, newest.get(id))) newest.set(id, {...entry, holder: server})
        }
      }),
    )
    if (held.size < 2) return
    const copies: Array<{id: string; to: number[]}> = []
    for (const [id, entry] of newest) {
      const to = [...held.keys()].filter((server) => newer(entry, held.get(server)!.get(id)))
      if (to.length > 0) copies.push({id, to})
    }
    this.stats.bucketsRepaired += buckets.length
    for (let i = 0; i < copies.length; i += COPIES_IN_FLIGHT) {
      await Promise.all(copies.slice(i, i + COPIES_IN_FLIGHT).map(({id, to}) => this.copy(newest.get(id)!, to)))
    }
  }

  private async copy(entry: Versioned & {key: Buffer; holder: number}, to: number[]): Promise<void> {
    try {
      let value: Buffer | null = null
      if (!entry.tomb) {
        const record = await this.replicas.fetch(entry.holder, entry.key)
        if (!record || record.version !== entry.version) return
        value = record.value
      }
      await Promise.all(to.map((server) => this.members.call(server, 'XSET', entry.key, entry.version, entry.tomb ? 1 : 0, value ?? '')))
      this.stats.keysCopied += to.length
    } catch {
      // a replica went down mid-copy; the next round retries
    }
  }
}
