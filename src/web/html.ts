/** The pieces every screen shares: escaping, the page layout, the backend chooser and breadcrumbs. */
import type {ClusterStatus} from '../kv/status.js'
import type {Session, Target} from '../ops/session.js'
import {registeredBackends} from '../backends/registry.js'
import {shownPath} from './paths.js'

export interface PageContext {
  session: Session
  csrf: string
  tracker?: string
  cluster: () => Promise<ClusterView>
}

/**
 * Where the cluster screens get their status: the router at DISK_CLUSTER,
 * or the embedded cluster's holder.
 */
export interface ClusterView {
  /** One line for the page, e.g. `Router 127.0.0.1:7000`. */
  label: string
  /** The CLI command that shows the same. */
  command: string
  status(): Promise<ClusterStatus>
}

const ESCAPES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c])

/** A path as a shell word: quoted when it holds anything a shell would read. */
export const shellWord = (text: string): string => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`)

export const q = (value: string): string => encodeURIComponent(value)

export interface Page {
  title: string
  screen: 'home' | 'upload' | 'download' | 'cluster' | 'torrents'
  body: string
  /** Module scripts under /static/. */
  scripts?: string[]
  /** The directory the page is about, for the navigation links (data-path form). */
  dir?: string
  status?: number
}

export function layout(ctx: PageContext, page: Page): string {
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
export function location(ctx: PageContext, target: Target, screen: string): string {
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
