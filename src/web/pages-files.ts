/** The file screens: home (the listing and its actions), upload and download. */
import type {Entry} from '../backends/adapter.js'
import {ConflictError} from '../base/index.js'
import {parentOf} from '../backends/remote-path.js'
import {listPath, statPath} from '../ops/files.js'
import {formatBytes} from '../ops/progress.js'
import {escapeHtml, location, type Page, type PageContext, q, shellWord} from './html.js'
import {resolveTarget, shownPath} from './paths.js'

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

export async function home(ctx: PageContext, url: URL): Promise<Page> {
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

export async function upload(ctx: PageContext, url: URL): Promise<Page> {
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

export async function download(ctx: PageContext, url: URL): Promise<Page> {
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
