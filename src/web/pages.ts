import type {ServerResponse} from 'node:http'

import type {Entry} from '../backends/adapter.js'
import {registeredBackends} from '../backends/registry.js'
import {ConflictError} from '../backends/errors.js'
import {parentOf} from '../backends/remote-path.js'
import {describeError} from '../cli/report-error.js'
import {formatBytes} from '../ops/progress.js'
import {listPath, statPath} from '../ops/files.js'
import type {Session, Target} from '../ops/session.js'
import {fetchStatus, type ClusterStatus} from '../kv/status.js'
import {statusFor} from './http.js'
import {resolveTarget, shownPath} from './paths.js'

export interface PageContext {
  session: Session
  csrf: string
  tracker?: string
  routerAddress: () => Promise<{host: string; port: number}>
}

const ESCAPES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c])

/** A path as a shell word: quoted when it holds anything a shell would read. */
export const shellWord = (text: string): string => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`)

const q = (value: string): string => encodeURIComponent(value)

interface Page {
  title: string
  screen: 'home' | 'upload' | 'download' | 'cluster' | 'torrents'
  body: string
  /** Module scripts under /static/. */
  scripts?: string[]
  /** The directory the page is about, for the navigation links (data-path form). */
  dir?: string
  status?: number
}

function layout(ctx: PageContext, page: Page): string {
  const nav: Array<[Page['screen'], string, string]> = [
    ['home', 'Home', `/?path=${q(page.dir ?? '/')}`],
    ['upload', 'Upload', `/upload?path=${q(page.dir ?? '/')}`],
    ['cluster', 'Cluster', '/cluster'],
  ]
  if (ctx.tracker) nav.push(['torrents', 'Torrents', '/torrents'])
  const links = nav
    .map(([screen, label, href]) => `<a href="${escapeHtml(href)}"${screen === page.screen ? ' aria-current="page"' : ''}>${label}</a>`)
    .join(' ')
  const scripts = ['common.js', ...(page.scripts ?? [])].map((s) => `<script type="module" src="/static/${s}"></script>`).join('\n')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${escapeHtml(ctx.csrf)}">
<title>${escapeHtml(page.title)} · disk-client</title>
<link rel="stylesheet" href="/static/style.css">
${scripts}
</head>
<body data-screen="${page.screen}">
<header><strong>disk-client</strong> <nav>${links}</nav></header>
<main>
${page.body}
<section class="cli" aria-label="Equivalent commands"><h2>Equivalent commands</h2><ol id="commands"></ol></section>
<p id="status" role="status"></p>
</main>
</body>
</html>
`
}

/** The backend chooser and the breadcrumbs of a directory. */
function location(ctx: PageContext, target: Target, screen: string): string {
  const defaultBackend = ctx.session.settings.defaultBackend
  const options = registeredBackends()
    .map((name) => `<option value="${name}"${name === target.backend ? ' selected' : ''}>${name}:</option>`)
    .join('')
  const crumbs = [`<a href="/${screen}?path=${q(shownPath(target.backend, '/', defaultBackend))}">${escapeHtml(target.backend)}:/</a>`]
  let sofar = ''
  for (const part of target.path.split('/').filter(Boolean)) {
    sofar += `/${part}`
    crumbs.push(`<a href="/${screen}?path=${q(shownPath(target.backend, sofar, defaultBackend))}">${escapeHtml(part)}</a>`)
  }
  return `<div class="location"><label>Backend <select id="backend" data-action="backend" data-screen="${screen}">${options}</select></label>
<nav class="breadcrumbs" aria-label="Breadcrumbs">${crumbs.join(' / ')}</nav></div>`
}

type SortKey = 'name' | 'size' | 'modified'

function sortEntries(entries: Entry[], key: SortKey, descending: boolean): Entry[] {
  const by: Record<SortKey, (a: Entry, b: Entry) => number> = {
    name: (a, b) => a.name.localeCompare(b.name),
    size: (a, b) => (a.size ?? -1) - (b.size ?? -1) || a.name.localeCompare(b.name),
    modified: (a, b) => (a.modified ?? '').localeCompare(b.modified ?? '') || a.name.localeCompare(b.name),
  }
  const sorted = [...entries].sort(by[key])
  if (descending) sorted.reverse()
  // Directories first, as every file manager does.
  return [...sorted.filter((e) => e.type === 'dir'), ...sorted.filter((e) => e.type === 'file')]
}

async function home(ctx: PageContext, url: URL): Promise<Page> {
  const target = await resolveTarget(ctx.session, url.searchParams.get('path') || '/')
  const defaultBackend = ctx.session.settings.defaultBackend
  const here = shownPath(target.backend, target.path, defaultBackend)
  const key = (['name', 'size', 'modified'] as const).find((k) => k === url.searchParams.get('sort')) ?? 'name'
  const descending = url.searchParams.get('order') === 'desc'
  const entries = sortEntries(await listPath(target), key, descending)
  const header = (k: SortKey, label: string): string => {
    const order = k === key && !descending ? 'desc' : 'asc'
    const mark = k === key ? (descending ? ' ▼' : ' ▲') : ''
    return `<th><a href="/?path=${q(here)}&amp;sort=${k}&amp;order=${order}" data-sort="${k}">${label}${mark}</a></th>`
  }
  const rows = entries.map((entry) => {
    const shown = shownPath(target.backend, entry.path, defaultBackend)
    const href = entry.type === 'dir' ? `/?path=${q(shown)}` : `/download?path=${q(shown)}`
    const title = entry.type === 'dir' ? `Download ${entry.name} as a zip` : `Download ${entry.name}`
    return `<tr data-path="${escapeHtml(shown)}" data-type="${entry.type}">
<td><input type="checkbox" class="select" aria-label="Select ${escapeHtml(entry.name)}"></td>
<td class="name"><a href="${escapeHtml(href)}">${escapeHtml(entry.name)}${entry.type === 'dir' ? '/' : ''}</a></td>
<td class="size">${entry.size === null ? '—' : `<span title="${entry.size} bytes">${formatBytes(entry.size)}</span>`}</td>
<td class="modified">${entry.modified ? escapeHtml(entry.modified.replace('T', ' ').slice(0, 19)) : '—'}</td>
<td><a data-action="download" href="/api/file?path=${q(shown)}" download title="${escapeHtml(title)}">Download</a></td>
</tr>`
  })
  const body = `<h1>Files</h1>
${location(ctx, target, '')}
<div class="toolbar" data-dir="${escapeHtml(here)}">
<button type="button" data-action="mkdir" title="Create a folder here">New folder</button>
<button type="button" data-action="rename" title="Rename or move the selected entry">Rename / move</button>
<button type="button" data-action="copy" title="Copy the selected entries (also to another backend, e.g. cluster:/backup)">Copy</button>
<button type="button" data-action="delete" title="Delete the selected entries">Delete</button>
<a data-action="upload" href="/upload?path=${q(here)}" title="Upload files or a folder here">Upload</a>
</div>
<table class="listing">
<thead><tr><th><input type="checkbox" id="select-all" aria-label="Select all"></th>${header('name', 'Name')}${header('size', 'Size')}${header('modified', 'Modified')}<th></th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
${entries.length === 0 ? '<p class="empty">This folder is empty.</p>' : ''}
<p class="command">Listing: <code>disk-client ls ${escapeHtml(shellWord(here))} --long</code></p>`
  return {title: here, screen: 'home', body, scripts: ['app.js'], dir: here}
}

async function upload(ctx: PageContext, url: URL): Promise<Page> {
  const target = await resolveTarget(ctx.session, url.searchParams.get('path') || '/')
  const here = shownPath(target.backend, target.path, ctx.session.settings.defaultBackend)
  const entry = await statPath(target)
  if (entry.type !== 'dir') throw new ConflictError(`${here} is not a directory`, 'not-directory')
  const body = `<h1>Upload</h1>
${location(ctx, target, 'upload')}
<div class="upload" data-dir="${escapeHtml(here)}">
<p><label>Files <input type="file" id="files" multiple data-action="upload" title="Choose files to upload"></label></p>
<p><label>A folder <input type="file" id="folder" webkitdirectory multiple data-action="upload" title="Choose a folder to upload"></label></p>
<div id="drop" class="drop">Drop files or folders here</div>
<p><label><input type="checkbox" id="overwrite"> Replace existing files</label></p>
<p>Overall <progress id="overall" max="1" value="0"></progress> <span id="overall-text"></span>
<button type="button" id="cancel-all" data-action="cancel" title="Cancel every upload">Cancel all</button></p>
<ul id="queue"></ul>
</div>
<p class="command">Uploading here: <code>disk-client upload ./FILE ${escapeHtml(shellWord(here === '/' ? '/' : here + '/'))}</code></p>
<p><a href="/?path=${q(here)}">Back to ${escapeHtml(here)}</a></p>`
  return {title: `Upload to ${here}`, screen: 'upload', body, scripts: ['upload.js'], dir: here}
}

async function download(ctx: PageContext, url: URL): Promise<Page> {
  const target = await resolveTarget(ctx.session, url.searchParams.get('path'))
  const defaultBackend = ctx.session.settings.defaultBackend
  const entry = await statPath(target)
  const shown = shownPath(target.backend, entry.path, defaultBackend)
  const dir = shownPath(target.backend, parentOf(target.path), defaultBackend)
  const name = entry.name || 'root'
  const rows: Array<[string, string]> = [
    ['Path', shown],
    ['Type', entry.type === 'dir' ? 'folder' : 'file'],
    ['Size', entry.size === null ? '—' : `${formatBytes(entry.size)} (${entry.size} bytes)`],
    ['Modified', entry.modified ?? '—'],
  ]
  if (entry.md5) rows.push(['MD5', entry.md5])
  if (entry.sha256) rows.push(['SHA-256', entry.sha256])
  const body = `<h1>Download</h1>
${location(ctx, {...target, path: parentOf(target.path)}, '')}
<dl class="details" data-path="${escapeHtml(shown)}" data-type="${entry.type}">
${rows.map(([k, v]) => `<dt>${k}</dt><dd>${escapeHtml(v)}</dd>`).join('\n')}
</dl>
<p><a class="button" data-action="download" href="/api/file?path=${q(shown)}" download title="Download ${escapeHtml(name)}">${entry.type === 'dir' ? `Download ${escapeHtml(name)}.zip` : `Download ${escapeHtml(name)}`}</a></p>
<p class="command">The same with the CLI: <code>disk-client download ${escapeHtml(shellWord(shown))} ${escapeHtml(shellWord('./' + name))}</code></p>`
  return {title: `Download ${name}`, screen: 'download', body, dir}
}

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

async function cluster(ctx: PageContext): Promise<Page> {
  const router = await ctx.routerAddress()
  const address = `${router.host}:${router.port}`
  let summary: string
  let rows = ''
  try {
    const status = await fetchStatus(router)
    summary = `${status.servers_up} of ${status.servers} servers up, replicas ${status.replicas}, hints pending ${status.hints_pending}, buffered writes ${status.buffered_writes}`
    rows = clusterRows(status)
  } catch (error) {
    summary = `cannot reach the router at ${address}: ${(error as Error).message}`
  }
  const body = `<h1>Cluster</h1>
<p>Router <code>${escapeHtml(address)}</code>. <span id="cluster-summary">${escapeHtml(summary)}</span> <span id="cluster-live" class="live">connecting…</span></p>
<table class="cluster">
<thead><tr><th>Server</th><th>Address</th><th>State</th><th>Last heartbeat</th><th>Keys</th><th>Hints</th><th>Disk</th></tr></thead>
<tbody id="servers">
${rows}
</tbody>
</table>
<p class="command">The same with the CLI: <code>disk-client cluster status --router ${escapeHtml(address)}</code></p>`
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

async function torrents(ctx: PageContext): Promise<Page | undefined> {
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
<td>${escapeHtml(String(t.name))}</td><td><span title="${Number(t.size)} bytes">${formatBytes(Number(t.size))}</span></td><td>${formatBytes(Number(t.pieceLength))}</td>
<td class="seeders">${Number(t.seeders)}</td><td class="leechers">${Number(t.leechers)}</td><td>${Number(t.completed)}</td>
<td><code>${escapeHtml(String(t.infoHash))}</code></td>
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

const PAGES: Record<string, (ctx: PageContext, url: URL) => Promise<Page | undefined>> = {
  '/': home,
  '/upload': upload,
  '/download': download,
  '/cluster': cluster,
  '/torrents': torrents,
}

/** Renders a screen; a failure shows on the page with the CLI's message and a fitting status. */
export async function renderPage(ctx: PageContext, res: ServerResponse, url: URL): Promise<boolean> {
  const render = PAGES[url.pathname]
  if (!render) return false
  let page: Page | undefined
  try {
    page = await render(ctx, url)
    if (!page) return false
  } catch (error) {
    const described = describeError(error)
    page = {
      title: 'Error',
      screen: 'home',
      status: statusFor(described),
      body: `<h1>Error</h1><p class="error" data-code="${escapeHtml(described.code)}">${escapeHtml(described.message)}</p><p><a href="/">Home</a></p>`,
    }
  }

  const html = layout(ctx, page)
  res.writeHead(page.status ?? 200, {'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html), 'Cache-Control': 'no-store'})
  res.end(html)
  return true
}
