/** What `db sync` and `db status` ask of a main or a proxy. */
import {RespClient} from '../kv/client.js'

async function call(address: {host: string; port: number}, ...args: string[]): Promise<string> {
  const client = await RespClient.connect({...address, connectTimeoutMs: 3000})
  try {
    const reply = await client.call(...args)
    return Buffer.isBuffer(reply) ? reply.toString() : String(reply)
  } finally {
    client.close()
  }
}

/** SYNCREPLICAS on a main: its held writes go to the replicas. Returns their bytes. */
export async function syncReplicas(main: {host: string; port: number}): Promise<number> {
  return Number(await call(main, 'SYNCREPLICAS'))
}

export interface ReadStats {
  main: {addr: string; reads: number}
  replicas: Array<{addr: string; reads: number; state: 'up' | 'down'; lagBytes: number}>
}

/** Parses the proxy's `INFO reads` section. */
export function parseReads(text: string): ReadStats {
  const stats: ReadStats = {main: {addr: '', reads: 0}, replicas: []}
  for (const line of text.split(/\r?\n/)) {
    const match = /^(main|replica(\d+)):(.*)$/.exec(line)
    if (!match) continue
    const fields = Object.fromEntries(match[3].split(',').map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]))
    if (match[1] === 'main') stats.main = {addr: fields.addr ?? '', reads: Number(fields.reads)}
    else stats.replicas[Number(match[2])] = {addr: fields.addr, reads: Number(fields.reads), state: fields.state === 'up' ? 'up' : 'down', lagBytes: Number(fields.lag_bytes)}
  }
  return stats
}

export async function fetchReads(proxy: {host: string; port: number}): Promise<ReadStats> {
  return parseReads(await call(proxy, 'INFO', 'reads'))
}
