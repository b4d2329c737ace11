// With HTTP_PROXY set, the Yandex backend goes through the proxy (axios
// honours it; the direct node:http path does not) for API calls, uploads and
// downloads alike (every other Yandex test covers the direct path). A real forward proxy on
// 127.0.0.1 stands in for the API and its hosts, whose names do not resolve:
// only a request through the proxy can be answered. The built CLI runs as a
// process (nock, loaded in this one, cannot carry axios's proxy requests).
import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {runCli} from '../../helpers/cli.js'

const API = 'http://api.disk-client.invalid/v1/disk'
const CONTENT = Buffer.from('through the proxy\n')

describe('Yandex backend behind HTTP_PROXY (the built CLI)', function () {
  this.timeout(60_000)
  let proxy: http.Server
  let proxyUrl = ''
  let work = ''
  /** Every request the proxy saw: its absolute URL and whether it carried the token. */
  const seen: Array<{url: URL; token: boolean}> = []
  const files = new Map<string, Buffer>()

  before(async () => {
    proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const url = new URL(req.url ?? '/')
        seen.push({url, token: req.headers.authorization === 'OAuth secret'})
        const json = (status: number, value: unknown) => res.writeHead(status, {'content-type': 'application/json'}).end(JSON.stringify(value))
        const name = (url.searchParams.get('path') ?? '').replace(/^disk:/, '')
        if (url.hostname === 'api.disk-client.invalid' && url.pathname === '/v1/disk/resources') {
          const content = files.get(name)
          if (!content) return json(404, {error: 'DiskNotFoundError', description: 'Resource not found.'})
          const digest = (algorithm: string) => createHash(algorithm).update(content).digest('hex')
          return json(200, {name: name.slice(1), path: `disk:${name}`, type: 'file', size: content.length, md5: digest('md5'), sha256: digest('sha256')})
        }

        if (url.pathname === '/v1/disk/resources/download') return json(200, {href: `http://downloader.disk-client.invalid${name}`, method: 'GET'})
        if (url.pathname === '/v1/disk/resources/upload') return json(200, {href: `http://uploader.disk-client.invalid${name}`, method: 'PUT', operation_id: '1'})
        if (url.hostname === 'downloader.disk-client.invalid') return void res.writeHead(200).end(files.get(url.pathname))
        if (url.hostname === 'uploader.disk-client.invalid') {
          files.set(url.pathname, Buffer.concat(chunks))
          return void res.writeHead(201).end()
        }

        res.writeHead(500).end()
      })
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-yproxy-'))
  })

  beforeEach(() => {
    seen.length = 0
    files.clear()
    files.set('/a.txt', CONTENT)
  })

  after(async () => {
    await new Promise<void>((resolve) => proxy.close(() => resolve()))
    await fs.rm(work, {recursive: true, force: true})
  })

  const env = (extra: NodeJS.ProcessEnv) => ({
    HOME: work,
    YANDEX_DISK_TOKEN: 'secret',
    YANDEX_DISK_API_URL: API,
    DISK_RETRIES: '0',
    HTTP_PROXY: '',
    http_proxy: '',
    HTTPS_PROXY: '',
    https_proxy: '',
    NO_PROXY: '',
    no_proxy: '',
    ...extra,
  })

  it('stats, downloads and uploads through the proxy, the token sent to the API only', async () => {
    const through = env({HTTP_PROXY: proxyUrl})
    const stat = await runCli(['stat', 'yandex:/a.txt', '--json'], {env: through})
    expect(stat.code, stat.stderr).to.equal(0)
    expect(JSON.parse(stat.stdout)).to.deep.include({path: '/a.txt', type: 'file', size: CONTENT.length})

    const local = path.join(work, 'a.txt')
    const download = await runCli(['download', 'yandex:/a.txt', local], {env: through})
    expect(download.code, download.stderr).to.equal(0)
    expect(await fs.readFile(local)).to.deep.equal(CONTENT)

    const upload = await runCli(['upload', local, 'yandex:/b.txt'], {env: through})
    expect(upload.code, upload.stderr).to.equal(0)
    expect(files.get('/b.txt')).to.deep.equal(CONTENT)

    const hosts = new Set(seen.map((request) => request.url.hostname))
    expect([...hosts]).to.have.members(['api.disk-client.invalid', 'downloader.disk-client.invalid', 'uploader.disk-client.invalid'])
    for (const request of seen) expect(request.token, request.url.href).to.equal(request.url.hostname === 'api.disk-client.invalid')
  })
})
