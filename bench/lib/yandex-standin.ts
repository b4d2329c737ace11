// A stand-in for the Yandex.Disk REST API on 127.0.0.1 with an in-memory
// tree and a fixed delay before every answer (the round trip to a real
// API), enough for disk-client and rclone's yandex backend to copy trees
// both ways: listings with _embedded pages, stat, mkdir, upload and
// download links, the hrefs themselves, and rclone's PATCH of
// custom_properties. It counts every request, so a bench can print
// requests per file. Bench use only.
import {createHash} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

interface Node {
  type: 'dir' | 'file'
  content?: Buffer
  md5?: string
  sha256?: string
  modified: string
}

export interface StandIn {
  /** The API base for disk-client: `http://127.0.0.1:PORT/v1/disk`. */
  apiUrl: string
  /** Handles one request (also reachable through a TLS proxy, for clients with a fixed API host). */
  handler: http.RequestListener
  /** Requests since the last reset, by kind (`GET /resources`, `PUT href`, …). */
  counts: Map<string, number>
  total(): number
  reset(): void
  addFile(path: string, content: Buffer): void
  read(path: string): Buffer | undefined
  close(): Promise<void>
}

const now = () => new Date().toISOString()

export async function startYandexStandIn(latencyMs: number, trace?: (kind: string, url: string) => void): Promise<StandIn> {
  const tree = new Map<string, Node>([['/', {type: 'dir', modified: now()}]])
  const counts = new Map<string, number>()
  const uploads = new Map<string, string>()
  let nextId = 0
  let origin = ''

  const parentOf = (path: string) => path.slice(0, path.lastIndexOf('/')) || '/'
  /** `disk:/a/b/` or `/a/b` → `/a/b`. */
  const norm = (value: string | null) => {
    const path = (value ?? '').replace(/^disk:/, '').replace(/\/+$/, '')
    return path.startsWith('/') ? path : `/${path}`
  }

  const resource = (path: string): Record<string, unknown> => {
    const node = tree.get(path)!
    const base = {name: path === '/' ? 'disk' : path.slice(path.lastIndexOf('/') + 1), path: `disk:${path}`, type: node.type, created: node.modified, modified: node.modified}
    if (node.type === 'dir') return base
    return {...base, size: node.content!.length, md5: node.md5, sha256: node.sha256, mime_type: 'application/octet-stream'}
  }

  const children = (path: string) => {
    const prefix = path === '/' ? '/' : `${path}/`
    return [...tree.keys()].filter((p) => p !== path && p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).sort()
  }

  const store = (path: string, content: Buffer) =>
    tree.set(path, {
      type: 'file',
      content,
      md5: createHash('md5').update(content).digest('hex'),
      sha256: createHash('sha256').update(content).digest('hex'),
      modified: now(),
    })

  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      void sleep(latencyMs).then(() => answer(req, res, Buffer.concat(chunks)))
    })
  }

  function answer(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://stand-in')
    const route = url.pathname.replace(/^\/v1\/disk/, '').replace(/\/+$/, '') || '/'
    const kind = url.pathname.startsWith('/href/') ? `${req.method} ${url.pathname.split('/')[2]} href` : `${req.method} ${route}`
    counts.set(kind, (counts.get(kind) ?? 0) + 1)
    trace?.(kind, req.url ?? '')
    const json = (status: number, value: unknown) => {
      res.writeHead(status, {'content-type': 'application/json; charset=utf-8'})
      res.end(JSON.stringify(value))
    }

    const error = (status: number, code: string) => json(status, {error: code, message: code, description: code})
    const path = norm(url.searchParams.get('path'))
    switch (kind) {
      case 'GET /resources': {
        const node = tree.get(path)
        if (!node) return error(404, 'DiskNotFoundError')
        const out = resource(path)
        const fields = url.searchParams.get('fields')
        if (node.type === 'dir' && (!fields || fields.includes('_embedded'))) {
          const limit = Number(url.searchParams.get('limit') ?? 20)
          const offset = Number(url.searchParams.get('offset') ?? 0)
          const names = children(path)
          out._embedded = {items: names.slice(offset, offset + limit).map(resource), limit, offset, total: names.length, path: `disk:${path}`, sort: ''}
        }

        return json(200, out)
      }

      case 'PUT /resources': {
        if (tree.has(path)) return error(409, 'DiskPathPointsToExistentDirectoryError')
        if (tree.get(parentOf(path))?.type !== 'dir') return error(409, 'DiskPathDoesntExistsError')
        tree.set(path, {type: 'dir', modified: now()})
        return json(201, {href: `${origin}/v1/disk/resources?path=${encodeURIComponent(`disk:${path}`)}`, method: 'GET', templated: false})
      }

      case 'PATCH /resources': {
        return tree.has(path) ? json(200, resource(path)) : error(404, 'DiskNotFoundError')
      }

      case 'GET /resources/upload': {
        if (tree.get(parentOf(path))?.type !== 'dir') return error(409, 'DiskPathDoesntExistsError')
        if (tree.has(path) && url.searchParams.get('overwrite') !== 'true') return error(409, 'DiskResourceAlreadyExistsError')
        const id = String(nextId++)
        uploads.set(id, path)
        return json(200, {operation_id: id, href: `${origin}/href/upload/${id}`, method: 'PUT', templated: false})
      }

      case 'PUT upload href': {
        const target = uploads.get(url.pathname.split('/')[3])
        if (target === undefined) return void res.writeHead(404).end('Not Found')
        store(target, body)
        return void res.writeHead(201).end('Created')
      }

      case 'GET /resources/download': {
        if (tree.get(path)?.type !== 'file') return error(404, 'DiskNotFoundError')
        return json(200, {href: `${origin}/href/download${encodeURI(path)}`, method: 'GET', templated: false})
      }

      case 'GET download href': {
        const content = tree.get(decodeURI(url.pathname.slice('/href/download'.length)))?.content
        if (!content) return void res.writeHead(404).end('Not Found')
        res.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': String(content.length)})
        return void res.end(content)
      }

      default: {
        return error(404, 'NotFoundError')
      }
    }
  }

  const server = http.createServer(handler)
  server.keepAliveTimeout = 30_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    apiUrl: `${origin}/v1/disk`,
    handler,
    counts,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    reset: () => counts.clear(),
    addFile(path, content) {
      for (let dir = parentOf(path); !tree.has(dir); dir = parentOf(dir)) tree.set(dir, {type: 'dir', modified: now()})
      store(path, content)
    },
    read: (path) => tree.get(path)?.content,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
