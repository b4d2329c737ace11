import type {ServerResponse} from 'node:http'

import {describeError} from '../cli/report-error.js'
import {escapeHtml, layout, type Page, type PageContext} from './html.js'
import {statusFor} from './http.js'
import {download, home, upload} from './pages-files.js'
import {cluster, torrents} from './pages-nodes.js'

export type {PageContext} from './html.js'

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
