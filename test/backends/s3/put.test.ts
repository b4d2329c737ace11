import {Readable} from 'node:stream'

import {CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, type S3Client} from '@aws-sdk/client-s3'
import {expect} from 'chai'

import type {StorageAdapter} from '../../../src/backends/adapter.js'
import {IntegrityError, NotFoundError, TemporaryError} from '../../../src/base/index.js'
import {createS3Backend} from '../../../src/backends/s3/index.js'
import {seeded, sha256} from '../../helpers/bytes.js'
import {type Radosgw, s3SettingsFor, sharedRadosgw} from '../../helpers/radosgw.js'
import {gatewayClient} from '../../helpers/s3-client.js'
import {S3Proxy} from '../../helpers/s3-proxy.js'

const MiB = 1024 * 1024
const BUCKET = `put-${process.pid}-${Date.now().toString(36)}`

/** A stream of `data` in chunks of uneven sizes (none aligned with a part), its size unknown to the writer. */
function unevenStream(data: Buffer): Readable {
  let offset = 0
  let n = 0
  return new Readable({
    read() {
      if (offset >= data.length) {
        this.push(null)
        return
      }

      const size = [65_536, 1, 1_000_003, 300_007][n++ % 4]
      this.push(data.subarray(offset, offset + size))
      offset += size
    },
  })
}

describe('s3: uploads on signed requests of our own (put.ts)', function () {
  this.timeout(120_000)
  let gateway: Radosgw
  let client: S3Client
  let proxy: S3Proxy
  let adapter: StorageAdapter

  before(async function () {
    this.timeout(240_000)
    gateway = await sharedRadosgw()
    client = gatewayClient(gateway)
    await client.send(new CreateBucketCommand({Bucket: BUCKET}))
    proxy = await new S3Proxy(new URL(gateway.endpoint)).start()
    adapter = await createS3Backend({...s3SettingsFor(gateway), s3Endpoint: proxy.endpoint, retries: 2})
  })

  beforeEach(() => proxy.reset())

  after(async () => {
    await adapter?.remove(`/${BUCKET}`, {recursive: true}).catch(() => {})
    await adapter?.close?.()
    await proxy?.stop()
    client?.destroy()
  })

  const pendingUploads = async (): Promise<string[]> =>
    ((await client.send(new ListMultipartUploadsCommand({Bucket: BUCKET}))).Uploads ?? []).map((u) => u.Key ?? '')

  const stored = async (key: string): Promise<{body: Buffer; sha256?: string}> => {
    const reply = await client.send(new GetObjectCommand({Bucket: BUCKET, Key: key}))
    return {body: Buffer.from(await reply.Body!.transformToByteArray()), sha256: reply.Metadata?.sha256}
  }

  it('sends a small and an empty file as one PutObject carrying the sha256', async () => {
    for (const [name, data] of [
      ['small.bin', seeded(1000, 'small')],
      ['empty.bin', Buffer.alloc(0)],
    ] as const) {
      const entry = await adapter.write(`/${BUCKET}/${name}`, Readable.from([data]), {size: data.length})
      expect(entry.sha256).to.equal(sha256(data))
      const back = await stored(name)
      expect(back.body.equals(data), name).to.equal(true)
      expect(back.sha256).to.equal(sha256(data))
    }

    expect(proxy.seen.filter((r) => r.method === 'PUT').map((r) => r.url)).to.deep.equal([`/${BUCKET}/small.bin`, `/${BUCKET}/empty.bin`])
    expect(proxy.seen.some((r) => r.method === 'POST')).to.equal(false)
  })

  it('uploads a stream of unknown size in parts, identical, the sha256 stored by a self-copy, nothing pending', async () => {
    const data = seeded(3 * 8 * MiB + 12_345, 'unknown')
    let progress = 0
    const entry = await adapter.write(`/${BUCKET}/unknown.bin`, unevenStream(data), {onProgress: (bytes) => (progress = bytes)})
    expect(entry).to.include({size: data.length, sha256: sha256(data)})
    expect(progress).to.equal(data.length)
    const back = await stored('unknown.bin')
    expect(back.body.equals(data)).to.equal(true)
    expect(back.sha256).to.equal(sha256(data))
    const parts = proxy.seen.filter((r) => r.method === 'PUT' && r.url.includes('partNumber='))
    expect(parts.map((r) => r.bodyBytes)).to.deep.equal([8 * MiB, 8 * MiB, 8 * MiB, 12_345])
    expect(proxy.seen.filter((r) => r.copySource !== undefined)).to.have.length(1)
    expect(await pendingUploads()).to.deep.equal([])
  })

  it('puts an expected sha256 in CreateMultipartUpload: no self-copy', async () => {
    const data = seeded(9 * MiB, 'expected')
    await adapter.write(`/${BUCKET}/expected.bin`, Readable.from([data]), {size: data.length, expect: {sha256: sha256(data)}})
    expect((await client.send(new HeadObjectCommand({Bucket: BUCKET, Key: 'expected.bin'}))).Metadata?.sha256).to.equal(sha256(data))
    expect(proxy.seen.filter((r) => r.copySource !== undefined)).to.deep.equal([])
  })

  it('refuses content that does not match the expected sha256: aborted, nothing visible, nothing pending', async () => {
    const data = seeded(17 * MiB, 'mismatch')
    const write = adapter.write(`/${BUCKET}/mismatch.bin`, Readable.from([data]), {size: data.length, expect: {sha256: sha256(Buffer.from('other'))}})
    const error = await write.then(
      () => undefined,
      (failure: unknown) => failure,
    )
    expect(error).to.be.instanceOf(IntegrityError)
    expect(proxy.seen.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).to.equal(true)
    expect(await pendingUploads()).to.deep.equal([])
    expect(await adapter.stat(`/${BUCKET}/mismatch.bin`).catch((failure: unknown) => failure)).to.be.instanceOf(NotFoundError)
  })

  it('tries a failing part again (5xx) before giving up, then aborts the upload', async () => {
    proxy.options = {failPart: 2}
    const data = seeded(20 * MiB, 'fails')
    const error = await adapter.write(`/${BUCKET}/fails.bin`, Readable.from([data]), {size: data.length}).then(
      () => undefined,
      (failure: unknown) => failure,
    )
    expect(error).to.be.instanceOf(TemporaryError)
    // The first attempt and the two retries of the settings.
    expect(proxy.seen.filter((r) => r.method === 'PUT' && r.url.includes('partNumber=2&'))).to.have.length(3)
    expect(proxy.seen.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).to.equal(true)
    expect(await pendingUploads()).to.deep.equal([])
  })

  it('aborts the upload when its signal is aborted: the part in flight is dropped, nothing pending', async () => {
    proxy.options = {stallFromPart: 2}
    const data = seeded(20 * MiB, 'signal')
    const controller = new AbortController()
    const write = adapter.write(`/${BUCKET}/signal.bin`, Readable.from([data]), {size: data.length, signal: controller.signal})
    await proxy.until((r) => r.method === 'PUT' && r.url.includes('partNumber=2&'))
    expect(await pendingUploads()).to.deep.equal(['signal.bin'])
    controller.abort()
    const error = await write.then(
      () => undefined,
      (failure: unknown) => failure,
    )
    expect(error).to.be.instanceOf(TemporaryError)
    expect(await pendingUploads()).to.deep.equal([])
  })
})
