/** Reads a router's `# Cluster` view (and each up server's key count) for `cluster status`. */
import {RespClient} from './client.js'
import {parseHostPort} from './launch.js'

export interface MemberStatus {
  number: number
  addr: string
  state: 'up' | 'down'
  last_heartbeat_ms: number
  hints: number
  /** Live keys on that server (copies, not distinct keys); null when it cannot be asked. */
  keys: number | null
  /** Bytes of the filesystem under that server's data dir, from its INFO `# Disk`; null when it cannot be asked. */
  disk_total: number | null
  disk_free: number | null
}

export interface ClusterStatus {
  servers: number
  servers_up: number
  replicas: number
  hints_pending: number
  buffered_writes: number
  members: MemberStatus[]
}

/** Parses the lines of INFO's `# Cluster` section. */
export function parseClusterInfo(text: string): ClusterStatus {
  const status: ClusterStatus = {servers: 0, servers_up: 0, replicas: 0, hints_pending: 0, buffered_writes: 0, members: []}
  for (const line of text.split(/\r?\n/)) {
    const server = /^server(\d+):(.*)$/.exec(line)
    if (server) {
      const fields = Object.fromEntries(server[2].split(',').map((pair) => pair.split('=', 2) as [string, string]))
      status.members.push({
        number: Number(server[1]),
        addr: fields.addr ?? '',
        state: fields.state === 'up' ? 'up' : 'down',
        last_heartbeat_ms: Number(fields.last_heartbeat_ms ?? -1),
        hints: Number(fields.hints ?? 0),
        keys: null,
        disk_total: null,
        disk_free: null,
      })
      continue
    }
    const pair = /^(servers|servers_up|replicas|hints_pending|buffered_writes):(\d+)$/.exec(line)
    if (pair) status[pair[1] as 'servers'] = Number(pair[2])
  }
  return status
}

export async function fetchStatus(router: {host: string; port: number}): Promise<ClusterStatus> {
  const client = await RespClient.connect({...router, connectTimeoutMs: 3000, idleTimeoutMs: 5000})
  let status: ClusterStatus
  try {
    status = parseClusterInfo((await client.callString('INFO', 'cluster')) ?? '')
  } finally {
    client.close()
  }
  await Promise.all(
    status.members.map(async (member) => {
      if (member.state !== 'up' || !member.addr) return
      try {
        const server = await RespClient.connect({...parseHostPort(member.addr), connectTimeoutMs: 2000, idleTimeoutMs: 3000})
        try {
          member.keys = Number(await server.call('DBSIZE'))
          const info = String((await server.callString('INFO')) ?? '')
          const disk = (name: string): number | null => {
            const match = new RegExp(`^${name}:(\\d+)`, 'm').exec(info)
            return match ? Number(match[1]) : null
          }
          member.disk_total = disk('disk_total')
          member.disk_free = disk('disk_free')
        } finally {
          server.close()
        }
      } catch {
        member.keys = null
      }
    }),
  )
  return status
}
