// A stand-in for the Yandex.Disk API on 127.0.0.1, just enough for one
// upload or download: the upload href is a sink that hashes and discards
// what it receives; the download href streams zeros. Bench use only.
import {createHash} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'

export interface SinkFile {
  size: number
  md5: string
  sha256: string
}

export async function startYandexSink(): Promise<{url: string; files: Map<string, SinkFile>; close: () => Promise<void>}> {
  const files = new Map<string, SinkFile>()
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sink')
    const path = url.searchParams.get('path') ?? ''
    const json = (status: number, body: unknown) => {
      res.writeHead(status, {'content-type': 'application/json'})
      res.end(JSON.stringify(body))
    }

    if (url.pathname === '/v1/disk/resources' && req.method === 'GET') {
      if (path === 'disk:/') return json(200, {name: 'disk', path: 'disk:/', type: 'dir', _embedded: {items: [], total: 0, limit: 20, offset: 0}})
      const file = files.get(path)
      if (!file) return json(404, {error: 'DiskNotFoundError', message: 'not found', description: 'Resource not found.'})
      return json(200, {name: path.split('/').pop(), path, type: 'file', size: file.size, md5: file.md5, sha256: file.sha256, modified: new Date().toISOString()})
    }

    if (url.pathname === '/v1/disk/resources/upload') {
      return json(200, {href: `http://${req.headers.host}/upload-target?path=${encodeURIComponent(path)}`, method: 'PUT', templated: false})
    }

    if (url.pathname === '/upload-target' && req.method === 'PUT') {
      const md5 = createHash('md5')
      const sha256 = createHash('sha256')
      let size = 0
      req.on('data', (chunk: Buffer) => {
        md5.update(chunk)
        sha256.update(chunk)
        size += chunk.length
      })
      req.on('end', () => {
        files.set(path, {size, md5: md5.digest('hex'), sha256: sha256.digest('hex')})
        res.writeHead(201)
        res.end()
      })
      return
    }

    if (url.pathname === '/v1/disk/resources/download') {
      return json(200, {href: `http://${req.headers.host}/download-source?path=${encodeURIComponent(path)}`, method: 'GET'})
    }

    if (url.pathname === '/download-source') {
      const file = files.get(path)
      if (!file) return json(404, {error: 'DiskNotFoundError'})
      res.writeHead(200, {'content-length': String(file.size)})
      const zeros = Buffer.alloc(1024 * 1024)
      let left = file.size
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, zeros.length)
          left -= n
          if (!res.write(n === zeros.length ? zeros : zeros.subarray(0, n))) return void res.once('drain', pump)
        }

        res.end()
      }

      return pump()
    }

    json(404, {error: 'NotFound', message: `${req.method} ${url.pathname}`})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/v1/disk`,
    files,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
