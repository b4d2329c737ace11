import fs from 'node:fs/promises'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {CreateBucketCommand, PutObjectCommand, type S3Client} from '@aws-sdk/client-s3'
import {expect} from 'chai'

import type {StorageAdapter} from '../../../src/backends/adapter.js'
import {AuthError, IntegrityError, NotFoundError} from '../../../src/base/index.js'
import {LocalBackend} from '../../../src/backends/local/index.js'
import {fetchObject} from '../../../src/backends/s3/fetch.js'
import {createS3Backend} from '../../../src/backends/s3/index.js'
import {runCli} from '../../helpers/cli.js'
import {seeded, sha256} from '../../helpers/bytes.js'
import {cachedBytes} from '../../helpers/page-cache.js'
import {type Radosgw, s3SettingsFor, sharedRadosgw} from '../../helpers/radosgw.js'
import {gatewayClient} from '../../helpers/s3-client.js'

const MiB = 1024 * 1024
const BUCKET = `fetch-${process.pid}-${Date.now().toString(36)}`

describe('s3: parallel ranged download into a local file (fetch.ts)', function () {
  this.timeout(120_000)
  let gateway: Radosgw
  let client: S3Client
  let adapter: StorageAdapter
  let dir: string
  let env: Record<string, string>
  // Unverified (plain.bin): past one range (16 MiB) several times, the last one short: 3.5 ranges on 4 streams.
  // Verified (good.bin, tampered.bin): the first 16 MiB range, then the remaining 40 MiB as one range on one stream.
  const body = seeded(56 * MiB + 3, 'fetch')

  const settings = (secret: string) => s3SettingsFor(gateway, secret)

  before(async function () {
    this.timeout(240_000)
    gateway = await sharedRadosgw()
    client = gatewayClient(gateway)
    await client.send(new CreateBucketCommand({Bucket: BUCKET}))
    await client.send(new PutObjectCommand({Bucket: BUCKET, Key: 'good.bin', Body: body, Metadata: {sha256: sha256(body)}}))
    // Another tool's object: no hash to check against.
    await client.send(new PutObjectCommand({Bucket: BUCKET, Key: 'plain.bin', Body: body}))
    const tampered = Buffer.from(body)
    tampered[40 * MiB] ^= 1
    await client.send(new PutObjectCommand({Bucket: BUCKET, Key: 'tampered.bin', Body: tampered, Metadata: {sha256: sha256(body)}}))
    adapter = await createS3Backend(settings(gateway.secretAccessKey))
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 's3-fetch-'))
    env = {...gateway.env, HOME: dir}
  })

  after(async () => {
    await adapter?.remove(`/${BUCKET}`, {recursive: true}).catch(() => {})
    await adapter?.close?.()
    client?.destroy()
    if (dir) await fs.rm(dir, {recursive: true, force: true})
  })

  it('serves large files over http only, and small ones not at all', async () => {
    const entry = await adapter.stat(`/${BUCKET}/good.bin`)
    expect(adapter.readsInto?.(entry)).to.equal(true)
    expect(adapter.readsInto?.({...entry, size: 4 * MiB})).to.equal(false)
    const https = await createS3Backend({...settings(gateway.secretAccessKey), s3Endpoint: 'https://127.0.0.1:1'})
    expect(https.readsInto?.(entry)).to.equal(false)
    await https.close?.()
  })

  it('downloads through the CLI identical, verified, with progress summing to the size', async () => {
    const target = path.join(dir, 'good.bin')
    const result = await runCli(['download', `s3:/${BUCKET}/good.bin`, target], {env})
    expect(result.code, result.stderr).to.equal(0)
    // Whole segments went to the disk by direct I/O: only the last partial one passed through the page cache.
    expect(cachedBytes(target)).to.be.at.most(MiB + 4096)
    expect(sha256(await fs.readFile(target))).to.equal(sha256(body))
    let progress = 0
    const local = new LocalBackend(dir)
    const entry = await local.writeFrom!('/direct.bin', (sink) =>
      adapter.readInto!(`/${BUCKET}/good.bin`, sink, {onProgress: (bytes) => (progress += bytes)}),
    )
    expect(entry.size).to.equal(body.length)
    expect(progress).to.equal(body.length)
    expect(sha256(await fs.readFile(path.join(dir, 'direct.bin')))).to.equal(sha256(body))
  })

  it("reads another tool's object (no stored hash) unverified, identical", async () => {
    const target = path.join(dir, 'plain.bin')
    const result = await runCli(['download', `s3:/${BUCKET}/plain.bin`, target], {env})
    expect(result.code, result.stderr).to.equal(0)
    expect(sha256(await fs.readFile(target))).to.equal(sha256(body))
  })

  /**
   * A proxy in front of the gateway that breaks the first reply to each
   * range (a start on a 16 MiB boundary) 5 MiB and 1,000 bytes into its
   * body: it closes the connection there (`cut`, as radosgw was seen doing
   * now and then) or sends nothing more and keeps it open (`stall`).
   * Resumed requests go through whole. Records each request's Range.
   */
  async function breakingProxy(mode: 'cut' | 'stall'): Promise<{endpoint: string; ranges: string[]; broken: () => number; close: () => Promise<void>}> {
    const upstream = new URL(gateway.endpoint)
    const ranges: string[] = []
    let broken = 0
    const proxy = http.createServer((req, res) => {
      const range = String(req.headers.range ?? '')
      ranges.push(range)
      const start = Number(/^bytes=(\d+)-/.exec(range)?.[1] ?? -1)
      const breakAt = req.method === 'GET' && start >= 0 && start % (16 * MiB) === 0 ? 5 * MiB + 1000 : Number.POSITIVE_INFINITY
      const {connection: _connection, ...headers} = req.headers
      const forward = http.request({host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers}, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        let sent = 0
        answer.on('data', (chunk: Buffer) => {
          if (sent >= breakAt) return
          if (sent + chunk.length < breakAt) {
            sent += chunk.length
            if (!res.write(chunk)) answer.pause()
            return
          }

          // Stalled: the rest of the reply is read from the gateway and dropped, the client's connection stays open.
          res.write(chunk.subarray(0, breakAt - sent), () => (mode === 'cut' ? res.socket?.destroy() : undefined))
          sent = breakAt
          broken++
          if (mode === 'cut') answer.destroy()
        })
        res.on('drain', () => answer.resume())
        answer.on('end', () => (sent < breakAt ? res.end() : undefined))
        // The gateway's own reply cut short (radosgw does it now and then): cut ours too, as a gateway would.
        answer.on('close', () => {
          if (!answer.complete && sent < breakAt) res.destroy()
        })
      })
      forward.on('error', () => res.destroy())
      req.pipe(forward)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    return {
      endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      ranges,
      broken: () => broken,
      async close() {
        proxy.closeAllConnections()
        await new Promise<void>((resolve) => proxy.close(() => resolve()))
      },
    }
  }

  /** Every range asked again was asked from a whole segment (1 MiB) past its start, and there were at least `least`. */
  function expectResumedAtSegments(ranges: string[], least: number, what: string): void {
    const starts = ranges.flatMap((range) => /^bytes=(\d+)-/.exec(range)?.[1] ?? []).map(Number)
    const resumed = starts.filter((start) => start % (16 * MiB) !== 0)
    expect(resumed.length, `${what}: ${ranges.join(', ')}`).to.be.at.least(least)
    for (const start of resumed) expect(start % MiB, String(start)).to.equal(0)
  }

  it('resumes a reply cut off mid-body from its last whole segment (--retries 0), identical and verified', async () => {
    const proxy = await breakingProxy('cut')
    try {
      for (const name of ['good.bin', 'plain.bin']) {
        proxy.ranges.length = 0
        const target = path.join(dir, `resumed-${name}`)
        const result = await runCli(['download', `s3:/${BUCKET}/${name}`, target, '--retries', '0'], {env: {...env, S3_ENDPOINT: proxy.endpoint}})
        expect(result.code, result.stderr).to.equal(0)
        expect(sha256(await fs.readFile(target)), name).to.equal(sha256(body))
        expectResumedAtSegments(proxy.ranges, 2, name)
      }

      expect(proxy.broken()).to.be.at.least(4)
    } finally {
      await proxy.close()
    }
  })

  it('resumes a reply that stalls mid-body once the connection has said nothing for the idle time, identical and verified', async () => {
    const proxy = await breakingProxy('stall')
    const access = {endpoint: proxy.endpoint, region: 'us-east-1', forcePathStyle: true, accessKeyId: gateway.accessKeyId, secretAccessKey: gateway.secretAccessKey}
    try {
      for (const name of ['good.bin', 'plain.bin']) {
        proxy.ranges.length = 0
        const target = path.join(dir, `stalled-${name}`)
        const file = await fs.open(target, 'w+')
        let progress = 0
        try {
          const digests = await fetchObject(access, BUCKET, name, {fd: file.fd, wrote: () => {}}, {what: name, idleMs: 1500, onProgress: (bytes) => (progress += bytes)})
          expect(digests.sha256 ?? null, name).to.equal(name === 'good.bin' ? sha256(body) : null)
        } finally {
          await file.close()
        }

        expect(progress, name).to.equal(body.length)
        expect(sha256(await fs.readFile(target)), name).to.equal(sha256(body))
        expectResumedAtSegments(proxy.ranges, 2, name)
      }
    } finally {
      await proxy.close()
    }
  })

  it('refuses a large object whose content does not match its stored sha256, leaving no file and no temporary file', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'tampered-'))
    const result = await runCli(['download', `s3:/${BUCKET}/tampered.bin`, path.join(sub, 'tampered.bin'), '--retries', '0'], {env})
    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/sha256 mismatch/)
    expect(await fs.readdir(sub)).to.deep.equal([])
    const local = new LocalBackend(sub)
    const failed = await local.writeFrom!('/direct.bin', (sink) => adapter.readInto!(`/${BUCKET}/tampered.bin`, sink)).catch((error: unknown) => error)
    expect(failed).to.be.instanceOf(IntegrityError)
    expect(await fs.readdir(sub)).to.deep.equal([])
  })

  it('maps the replies of the plain client: a missing key is NotFoundError, a wrong secret AuthError', async () => {
    const local = new LocalBackend(dir)
    const missing = await local.writeFrom!('/missing.bin', (sink) => adapter.readInto!(`/${BUCKET}/missing.bin`, sink)).catch((error: unknown) => error)
    expect(missing).to.be.instanceOf(NotFoundError)
    const wrong = await createS3Backend(settings('not-the-secret'))
    const denied = await local.writeFrom!('/denied.bin', (sink) => wrong.readInto!(`/${BUCKET}/good.bin`, sink)).catch((error: unknown) => error)
    await wrong.close?.()
    expect(denied).to.be.instanceOf(AuthError)
    expect((await fs.readdir(dir)).filter((name) => /missing|denied|partial/.test(name))).to.deep.equal([])
  })
})
