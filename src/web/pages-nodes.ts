/** The node screens: the cluster (live over server-sent events) and the torrent tracker's pool. */
import type {ClusterStatus} from '../kv/status.js'
import {formatBytes} from '../ops/progress.js'
import {escapeHtml, type Page, type PageContext, shellWord} from './html.js'

function clusterRows(status: ClusterStatus): string {
  return status.members
    .map(
      (m) => `<tr data-server="${m.number}" data-state="${m.state}">
<td>${m.number}</td><td>${escapeHtml(m.addr || '—')}</td><td class="state">${m.state}</td>
<td>${m.last_heartbeat_ms < 0 ? '—' : `${m.last_heartbeat_ms} ms ago`}</td><td>${m.keys ?? '—'}</td><td>${m.hints}</td>
<td>${m.disk_free === null || m.disk_total === null ? '—' : `${formatBytes(m.disk_free)} free of ${formatBytes(m.disk_total)}`}</td></tr>`,
    )
    .join('\n')
}

export async function cluster(ctx: PageContext): Promise<Page> {
  const view = await ctx.cluster()
  let summary: string
  let rows = ''
  try {
    const status = await view.status()
    summary = `${status.servers_up} of ${status.servers} servers up, replicas ${status.replicas}, hints pending ${status.hints_pending}, buffered writes ${status.buffered_writes}`
    rows = clusterRows(status)
  } catch (error) {
    summary = `cannot reach the cluster: ${(error as Error).message}`
  }
  const body = `<h1>Cluster</h1>
<p>${escapeHtml(view.label)}. <span id="cluster-summary">${escapeHtml(summary)}</span> <span id="cluster-live" class="live">connecting…</span></p>
<table class="cluster">
<thead><tr><th>Server</th><th>Address</th><th>State</th><th>Last heartbeat</th><th>Keys</th><th>Hints</th><th>Disk</th></tr></thead>
<tbody id="servers">
${rows}
</tbody>
</table>
<p class="command">The same with the CLI: <code>${escapeHtml(view.command)}</code></p>`
  return {title: 'Cluster', screen: 'cluster', body, scripts: ['cluster.js']}
}

interface TrackedTorrent {
  infoHash: string
  name: string
  size: number
  pieceLength: number
  seeders: number
  leechers: number
  completed: number
}

/** The tracker's base URL: `http://h:p/announce` → `http://h:p`. */
export function trackerBase(tracker: string): string {
  return tracker.replace(/\/announce\/?$/, '').replace(/\/+$/, '')
}

export async function torrents(ctx: PageContext): Promise<Page | undefined> {
  if (!ctx.tracker) return undefined
  const base = trackerBase(ctx.tracker)
  let list: TrackedTorrent[] = []
  let problem = ''
  try {
    const response = await fetch(`${base}/torrents`, {signal: AbortSignal.timeout(5000)})
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    list = (await response.json()) as TrackedTorrent[]
    if (!Array.isArray(list)) throw new Error('the answer is not a list')
  } catch (error) {
    problem = `cannot read the tracker's pool at ${base}/torrents: ${(error as Error).message}`
  }
  const announce = `${base}/announce`
  const rows = list.map(
    (t) => `<tr data-infohash="${escapeHtml(String(t.infoHash))}">
<td class="name">${escapeHtml(String(t.name))}</td><td class="size"><span title="${Number(t.size)} bytes">${formatBytes(Number(t.size))}</span></td><td class="size">${formatBytes(Number(t.pieceLength))}</td>
<td class="seeders">${Number(t.seeders)}</td><td class="leechers">${Number(t.leechers)}</td><td>${Number(t.completed)}</td>
<td><code title="${escapeHtml(String(t.infoHash))}">${escapeHtml(String(t.infoHash).slice(0, 12))}…</code></td>
<td><code>disk-client torrent get ${escapeHtml(shellWord(String(t.name)))} --tracker ${escapeHtml(announce)} -o ./downloads</code></td></tr>`,
  )
  const body = `<h1>Torrents</h1>
<p>Tracker <code>${escapeHtml(announce)}</code>: ${list.length} torrent${list.length === 1 ? '' : 's'} in the pool. <a href="/torrents">Refresh</a></p>
${problem ? `<p class="error">${escapeHtml(problem)}</p>` : ''}
<table class="torrents">
<thead><tr><th>Name</th><th>Size</th><th>Piece</th><th>Seeders</th><th>Leechers</th><th>Completed</th><th>Info hash</th><th>Get it with the CLI</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`
  return {title: 'Torrents', screen: 'torrents', body}
}
