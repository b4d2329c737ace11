import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import type {IncomingMessage, ServerResponse} from 'node:http'
import {createRequire} from 'node:module'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const require = createRequire(import.meta.url)
/** assets/web of the package: the same folder from src/web (tsx) and dist/web (built). */
const ASSETS = fileURLToPath(new URL('../../assets/web/', import.meta.url))

/** Every static file, by URL: a fixed map, so no request path ever reaches the filesystem. */
const FILES: Record<string, () => string> = {
  '/static/app.js': () => path.join(ASSETS, 'app.js'),
  '/static/upload.js': () => path.join(ASSETS, 'upload.js'),
  '/static/cluster.js': () => path.join(ASSETS, 'cluster.js'),
  '/static/common.js': () => path.join(ASSETS, 'common.js'),
  '/static/style.css': () => path.join(ASSETS, 'style.css'),
  '/static/vendor/preact.js': () => path.join(path.dirname(require.resolve('preact')), 'preact.module.js'),
  '/static/vendor/htm.js': () => path.join(path.dirname(require.resolve('htm')), 'htm.module.js'),
}

const TYPES: Record<string, string> = {'.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8'}

export async function serveStatic(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> {
  const file = FILES[pathname]?.()
  if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) return false
  const info = await stat(file)
  res.writeHead(200, {'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'Content-Length': info.size, 'Cache-Control': 'no-cache'})
  if (req.method === 'HEAD') res.end()
  else createReadStream(file).pipe(res)
  return true
}
