/**
 * Placement: a consistent-hash ring with virtual nodes.
 *
 * The hash space is cut into 4096 buckets (the top 12 bits of a key's
 * murmur3 hash). Every virtual-node token sits on a bucket boundary, so each
 * bucket lies wholly inside one ring segment and all its keys share one
 * preference list. The bucket is therefore also the unit of anti-entropy:
 * replicas compare one digest per bucket.
 */

export const BUCKET_BITS = 12
export const BUCKETS = 1 << BUCKET_BITS

/** MurmurHash3 (x86, 32-bit). */
export function murmur3(data: Buffer, seed = 0): number {
  let h = seed | 0
  const length = data.length
  const blocks = length & ~3
  for (let i = 0; i < blocks; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  let k = 0
  const tail = length & 3
  if (tail === 3) k ^= data[blocks + 2] << 16
  if (tail >= 2) k ^= data[blocks + 1] << 8
  if (tail >= 1) {
    k ^= data[blocks]
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
  }
  h ^= length
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The bucket of an internal key. */
export function bucketOf(key: Buffer): number {
  return murmur3(key) >>> (32 - BUCKET_BITS)
}

export class Ring {
  readonly servers: number
  readonly replicas: number
  private readonly lists: number[][]

  /**
   * @param servers number of servers, numbered 0 … servers-1
   * @param replicas copies of each key (clamped to the number of servers)
   * @param vnodes virtual nodes per server
   */
  constructor(servers: number, replicas: number, vnodes = 64) {
    if (servers < 1) throw new RangeError('a ring needs at least one server')
    this.servers = servers
    this.replicas = Math.max(1, Math.min(replicas, servers))
    const perServer = Math.max(1, Math.min(vnodes, Math.floor(BUCKETS / 2 / servers)))
    const owner = new Int32Array(BUCKETS).fill(-1)
    for (let v = 0; v < perServer; v++) {
      for (let s = 0; s < servers; s++) {
        let token = murmur3(Buffer.from(`server-${s}-vnode-${v}`)) >>> (32 - BUCKET_BITS)
        while (owner[token] !== -1) token = (token + 1) % BUCKETS
        owner[token] = s
      }
    }
    this.lists = []
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      const list: number[] = []
      for (let step = 0; step < BUCKETS && list.length < this.replicas; step++) {
        const s = owner[(bucket + step) % BUCKETS]
        if (s !== -1 && !list.includes(s)) list.push(s)
      }
      this.lists.push(list)
    }
  }

  /** The preference list of a bucket: the first `replicas` distinct servers clockwise. */
  preference(bucket: number): readonly number[] {
    return this.lists[bucket]
  }

  preferenceFor(key: Buffer): readonly number[] {
    return this.lists[bucketOf(key)]
  }
}
