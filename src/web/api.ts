import type {IncomingMessage, ServerResponse} from 'node:http'
import {pipeline} from 'node:stream'

import {TemporaryError, UsageError} from '../base/index.js'
import {parentOf} from '../backends/remote-path.js'
import {listPath, makeDirectory, removePath, statPath} from '../ops/files.js'
import type {Session} from '../ops/session.js'
import {transfer} from '../ops/transfer.js'
import {ensureDir} from '../ops/tree.js'
import type {ClusterFeed} from './cluster-feed.js'
import type {ClusterView} from './html.js'
import {contentDisposition, field, readJson, sendError, sendJson} from './http.js'
import {resolveTarget} from './paths.js'

export interface ApiContext {
  session: Session
  feed: ClusterFeed
  cluster: () => Promise<ClusterView>
}

type Handler = (ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>

const truthy = (value: string | null): boolean => value === '1' || value === 'true'

/** `GET /api/ls?path=`: the same array as `ls --json`. */
const ls: Handler = async ({session}, _req, res, url) => {
  sendJson(res, 200, await listPath(await resolveTarget(session, url.searchParams.get('path') ?? '/')))
}

/** `GET /api/file?path=`: a file streamed with its name; a directory as a streamed zip. */
const getFile: Handler = async ({session}, _req, res, url) => {
  const target = await resolveTarget(session, url.searchParams.get('path'))
  const entry = await statPath(target)
  if (entry.type === 'dir') {
    const {streamZip} = await import('./zip.js')
    await streamZip(target, entry, res)
    return
  }

  const input = await target.adapter.openRead(target.path, {entry})
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/octet-stream',
    'Content-Disposition': contentDisposition(entry.name),
    'Cache-Control': 'no-store',
  }
  if (entry.size !== null) headers['Content-Length'] = entry.size
  res.writeHead(200, headers)
  pipeline(input, res, (error) => {
    if (error) res.destroy()
  })
}

/** `PUT /api/file?path=[&overwrite=1]`: the raw body, streamed to the backend's write; missing parents are created. */
const putFile: Handler = async ({session}, req, res, url) => {
  const target = await resolveTarget(session, url.searchParams.get('path'))
  if (target.path === '/') throw new UsageError('cannot write a file at /')
  const length = req.headers['content-length']
  const size = length === undefined ? undefined : Number(length)
  await ensureDir(target.adapter, parentOf(target.path))
  const entry = await target.adapter.write(target.path, req, {size, overwrite: truthy(url.searchParams.get('overwrite'))})
  sendJson(res, 201, entry)
}

/** `DELETE /api/file?path=[&recursive=1]`: as `rm [-r]`. */
const deleteFile: Handler = async ({session}, _req, res, url) => {
  const target = await resolveTarget(session, url.searchParams.get('path'))
  await removePath(target, {recursive: truthy(url.searchParams.get('recursive')), permanently: false})
  sendJson(res, 200, {removed: target.path})
}

/** `POST /api/mkdir {path, parents?}`: as `mkdir [-p]`. */
const mkdir: Handler = async ({session}, req, res) => {
  const body = await readJson(req)
  const entry = await makeDirectory(await resolveTarget(session, field(body, 'path')), body.parents === true)
  sendJson(res, 201, entry)
}

/** `POST /api/cp|mv {src, dst, overwrite?}`: the CLI's transfer, server-side or streamed across backends. */
function transferHandler(mode: 'copy' | 'move'): Handler {
  return async ({session}, req, res) => {
    const body = await readJson(req)
    const [src, dst] = [await resolveTarget(session, field(body, 'src')), await resolveTarget(session, field(body, 'dst'))]
    const result = await transfer(src, dst, mode, {
      overwrite: body.overwrite === true,
      retries: session.settings.retries,
      retryBaseMs: session.settings.retryBaseMs,
      log: session.settings.log,
      verb: mode,
    })
    sendJson(res, 200, result)
  }
}

/** `GET /api/cluster`: what `cluster status --json` prints. */
const cluster: Handler = async (ctx, _req, res) => {
  const view = await ctx.cluster()
  const status = await view.status().catch((error: Error) => {
    throw new TemporaryError(`cannot reach the cluster (${view.label}): ${error.message}`)
  })
  sendJson(res, 200, status)
}

/** `GET /api/cluster/events`: the same status as server-sent events, about once a second. */
const clusterEvents: Handler = async (ctx, req, res) => {
  await ctx.cluster()
  ctx.feed.subscribe(req, res)
}

export const API_ROUTES: Record<string, Partial<Record<string, Handler>>> = {
  '/api/ls': {GET: ls},
  '/api/file': {GET: getFile, PUT: putFile, DELETE: deleteFile},
  '/api/mkdir': {POST: mkdir},
  '/api/cp': {POST: transferHandler('copy')},
  '/api/mv': {POST: transferHandler('move')},
  '/api/cluster': {GET: cluster},
  '/api/cluster/events': {GET: clusterEvents},
}

/** Runs one API route; every failure becomes the CLI's error shape with a fitting status. */
export async function handleApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  const route = API_ROUTES[url.pathname]
  if (!route) return false
  const handler = route[req.method ?? 'GET']
  if (!handler) {
    res.setHeader('Allow', Object.keys(route).join(', '))
    sendJson(res, 405, {error: {code: 'EUSAGE', message: `${req.method} is not allowed on ${url.pathname}`, exitCode: 2}})
    return true
  }

  try {
    await handler(ctx, req, res, url)
  } catch (error) {
    // A refused upload leaves its body unread: drain it so the answer reaches the client.
    if (!req.readableEnded) req.resume()
    sendError(res, error)
  }

  return true
}
