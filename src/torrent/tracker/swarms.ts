/**
 * The tracker's peer table: which peers share which torrent, as a pure state
 * machine driven by `announce()` and `sweep()` with the time passed in (as
 * src/replication/view.ts), so HTTP and UDP share it and tests need no clock.
 */

export type AnnounceEvent = 'started' | 'completed' | 'stopped' | 'none'

export interface AnnounceRequest {
  infoHash: Buffer
  peerId: Buffer
  /** The address the peer is listed at: its `ip` parameter, else where it connected from. */
  ip: string
  port: number
  left: number
  event: AnnounceEvent
  /** How many peers the client wants; the table caps it. */
  numWant: number
}

export interface PeerEntry {
  peerId: Buffer
  ip: string
  port: number
  left: number
  lastSeen: number
}

export interface SwarmCounts {
  /** Current seeders (left = 0). */
  complete: number
  /** Current leechers. */
  incomplete: number
  /** `event=completed` announces ever received (BEP 48 `downloaded`). */
  downloaded: number
}

export interface AnnounceReply extends SwarmCounts {
  peers: PeerEntry[]
}

export const DEFAULT_NUMWANT = 50
export const MAX_NUMWANT = 200

interface Swarm {
  peers: Map<string, PeerEntry>
  downloaded: number
}

export class Swarms {
  private readonly swarms = new Map<string, Swarm>()

  /**
   * @param timeoutMs a peer silent this long is dropped by `sweep` (2 × interval).
   * @param onCompleted told each time a torrent's completion count grows.
   */
  constructor(
    private readonly timeoutMs: number,
    private readonly onCompleted: (infoHashHex: string, downloaded: number) => void = () => {},
  ) {}

  /** Restores persisted completion counts. */
  restore(counts: Record<string, number>): void {
    for (const [hex, downloaded] of Object.entries(counts)) this.swarm(hex).downloaded = downloaded
  }

  /** Every completion count, for persistence. */
  completions(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [hex, swarm] of this.swarms) if (swarm.downloaded > 0) out[hex] = swarm.downloaded
    return out
  }

  announce(request: AnnounceRequest, now: number): AnnounceReply {
    const hex = request.infoHash.toString('hex')
    const swarm = this.swarm(hex)
    const key = request.peerId.toString('hex')
    if (request.event === 'stopped') {
      swarm.peers.delete(key)
    } else {
      swarm.peers.set(key, {peerId: request.peerId, ip: request.ip, port: request.port, left: request.left, lastSeen: now})
      if (request.event === 'completed') {
        swarm.downloaded++
        this.onCompleted(hex, swarm.downloaded)
      }
    }
    const wanted = Math.min(request.numWant < 0 ? DEFAULT_NUMWANT : request.numWant, MAX_NUMWANT)
    const others = [...swarm.peers.values()].filter(
      (peer) => !peer.peerId.equals(request.peerId) && !(peer.ip === request.ip && peer.port === request.port),
    )
    return {...this.counts(hex), peers: sample(others, wanted)}
  }

  counts(infoHashHex: string): SwarmCounts {
    const swarm = this.swarms.get(infoHashHex)
    if (!swarm) return {complete: 0, incomplete: 0, downloaded: 0}
    let complete = 0
    for (const peer of swarm.peers.values()) if (peer.left === 0) complete++
    return {complete, incomplete: swarm.peers.size - complete, downloaded: swarm.downloaded}
  }

  /** Every torrent the tracker has heard of, hex info-hashes. */
  infoHashes(): string[] {
    return [...this.swarms.keys()]
  }

  /** Drops peers silent for longer than the timeout; returns how many. */
  sweep(now: number): number {
    let dropped = 0
    for (const [hex, swarm] of this.swarms) {
      for (const [key, peer] of swarm.peers) {
        if (now - peer.lastSeen > this.timeoutMs) {
          swarm.peers.delete(key)
          dropped++
        }
      }
      if (swarm.peers.size === 0 && swarm.downloaded === 0) this.swarms.delete(hex)
    }
    return dropped
  }

  private swarm(hex: string): Swarm {
    let swarm = this.swarms.get(hex)
    if (!swarm) {
      swarm = {peers: new Map(), downloaded: 0}
      this.swarms.set(hex, swarm)
    }
    return swarm
  }
}

/** Up to `count` items in random order (a partial Fisher–Yates shuffle). */
function sample<T>(items: T[], count: number): T[] {
  const n = Math.min(count, items.length)
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(Math.random() * (items.length - i))
    ;[items[i], items[j]] = [items[j], items[i]]
  }
  return items.slice(0, n)
}
