// Range GETs of `serve webdav`: answered from the backend's ranged read where
// it has one (only the bytes asked for are read), cut from a whole read
// otherwise; the same bytes either way. Then local files sent by a pool
// thread (src/base/send-file.ts): hang-ups, more GETs than threads, keep-alive.
import {randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import type {ReadOptions, StorageAdapter} from '../../src/backends/adapter.js'
import {MAX_SENDS, sendsInProgress} from '../../src/base/index.js'
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

describe('serve webdav: local files sent by a pool thread', function () {
  this.timeout(30_000)
  let dir: string
  let server: WebDavServer
  const content = randomBytes(24 * 1024 * 1024 + 5)

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-webdav-send-'))
    await fs.mkdir(path.join(dir, 'root'))
    await fs.writeFile(path.join(dir, 'root', 'big.bin'), content)
    server = new WebDavServer({adapter: new LocalBackend(path.join(dir, 'root')), host: '127.0.0.1', port: 0, propsFile: path.join(dir, 'props.json')})
    await server.start()
  })

  after(async () => {
    await server?.stop()
    await fs.rm(dir, {recursive: true, force: true})
  })

  it('keeps answering, and gives every thread back, when clients hang up mid-GET', async () => {
    const url = `${server.url}big.bin`
    // More hang-ups than sends may run at once (MAX_SENDS): a thread kept by one would show as a send in progress.
    for (let i = 0; i < MAX_SENDS + 2; i++) {
      await new Promise<void>((resolve, reject) => {
        const request = http.get(url, (res) => {
          res.once('data', () => {
            request.destroy()
            resolve()
          })
        })
        request.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve() : reject(error)))
      })
    }

    const deadline = Date.now() + 10_000
    while (sendsInProgress() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(sendsInProgress()).to.equal(0)
    // Several whole GETs at once, more than MAX_SENDS: some sent by threads, the rest streamed; all identical.
    const replies = await Promise.all(Array.from({length: MAX_SENDS + 2}, () => get(url, {})))
    for (const reply of replies) {
      expect(reply.status).to.equal(200)
      expect(reply.body.equals(content)).to.equal(true)
    }

    // Keep-alive and pipelining, on a raw connection (the test setup's nock handles http.request and closes
    // each connection): two GETs written at once, answered in order on the one connection, the second's
    // head only after every byte of the first's body.
    const {port} = new URL(url)
    const socket = net.connect(Number(port), '127.0.0.1')
    try {
      const request = `GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`
      socket.write(request + request)
      const expected = content.length
      let received = Buffer.alloc(0)
      const bodies: Buffer[] = []
      await new Promise<void>((resolve, reject) => {
        const chunks: Buffer[] = []
        let have = 0
        let head: {length: number; at: number} | undefined
        socket.on('data', (chunk: Buffer) => {
          chunks.push(chunk)
          have += chunk.length
          for (;;) {
            if (!head) {
              received = Buffer.concat(chunks)
              chunks.length = 0
              chunks.push(received)
              const end = received.indexOf('\r\n\r\n')
              if (end < 0) return
              const text = received.subarray(0, end).toString('latin1')
              if (!/^HTTP\/1\.1 200 /.test(text) || /connection: close/i.test(text)) return reject(new Error(`unexpected head: ${text}`))
              head = {length: Number(/content-length: (\d+)/i.exec(text)?.[1]), at: end + 4}
            }

            if (have < head.at + head.length) return
            received = Buffer.concat(chunks)
            bodies.push(received.subarray(head.at, head.at + head.length))
            const rest = received.subarray(head.at + head.length)
            chunks.length = 0
            chunks.push(rest)
            have = rest.length
            head = undefined
            if (bodies.length === 2) return resolve()
          }
        })
        socket.on('error', reject)
      })
      expect(bodies.map((body) => body.length)).to.deep.equal([expected, expected])
      expect(bodies[0].equals(content) && bodies[1].equals(content)).to.equal(true)
    } finally {
      socket.destroy()
    }
  })
})
