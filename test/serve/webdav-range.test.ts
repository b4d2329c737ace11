// Range GETs of `serve webdav`: answered from the backend's ranged read where
// it has one (only the bytes asked for are read), cut from a whole read
// otherwise; the same bytes either way.
import {randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import type {ReadOptions, StorageAdapter} from '../../src/backends/adapter.js'
import {LocalBackend} from '../../src/backends/local/index.js'
import {WebDavServer} from '../../src/serve/index.js'

function get(url: string, headers: Record<string, string>): Promise<{status: number; headers: http.IncomingHttpHeaders; body: Buffer}> {
  return new Promise((resolve, reject) => {
    http
      .get(url, {headers}, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks)}))
      })
      .on('error', reject)
  })
}

/** The local backend, saying `ranged` as told and recording the options of every openRead. */
function recording(local: LocalBackend, ranged: boolean, calls: Array<ReadOptions | undefined>): StorageAdapter {
  return new Proxy(local, {
    get(target, property) {
      if (property === 'ranged') return ranged
      if (property === 'openRead') {
        return (file: string, options?: ReadOptions) => {
          calls.push(options)
          return target.openRead(file, options)
        }
      }

      const value = Reflect.get(target, property) as unknown
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    },
  })
}

describe('serve webdav: Range GETs', function () {
  this.timeout(30_000)
  let dir: string
  const content = randomBytes(4 * 1024 * 1024 + 7)
  const size = content.length
  const servers: WebDavServer[] = []

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-webdav-range-'))
    await fs.mkdir(path.join(dir, 'root'))
    await fs.writeFile(path.join(dir, 'root', 'big.bin'), content)
  })

  after(async () => {
    for (const server of servers) await server.stop()
    await fs.rm(dir, {recursive: true, force: true})
  })

  for (const ranged of [true, false]) {
    it(ranged ? 'reads only the bytes asked for from a backend with ranged reads' : 'cuts the bytes asked for from a whole read on a backend without', async () => {
      const calls: Array<ReadOptions | undefined> = []
      const server = new WebDavServer({
        adapter: recording(new LocalBackend(path.join(dir, 'root')), ranged, calls),
        host: '127.0.0.1',
        port: 0,
        propsFile: path.join(dir, `props-${ranged}.json`),
      })
      servers.push(server)
      await server.start()
      const url = `${server.url}big.bin`
      const cases: Array<[string, number, number]> = [
        ['bytes=1000-1999', 1000, 1999],
        ['bytes=3000000-', 3_000_000, size - 1],
        ['bytes=-100', size - 100, size - 1],
        [`bytes=${size - 5}-${size + 1000}`, size - 5, size - 1],
        ['bytes=0-0', 0, 0],
      ]
      for (const [range, start, end] of cases) {
        const reply = await get(url, {Range: range})
        expect(reply.status, range).to.equal(206)
        expect(reply.headers['content-range'], range).to.equal(`bytes ${start}-${end}/${size}`)
        expect(reply.body.equals(content.subarray(start, end + 1)), range).to.equal(true)
        const options = calls.at(-1)
        if (ranged) expect(options?.range, range).to.deep.equal({offset: start, count: end - start + 1})
        else expect(options?.range, range).to.equal(undefined)
      }

      expect((await get(url, {Range: `bytes=${size}-`})).status).to.equal(416)
      const whole = await get(url, {})
      expect(whole.status).to.equal(200)
      expect(whole.body.equals(content)).to.equal(true)
      expect(calls.at(-1)?.range).to.equal(undefined)
      // The whole file is asked for in recycled 1 MiB chunks (webdav.ts GET_CHUNK_BYTES).
      expect(calls.at(-1)?.recycled).to.equal(true)
      expect(calls.at(-1)?.chunkBytes).to.equal(1024 * 1024)
    })
  }
})
