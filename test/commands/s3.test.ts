// The s3: backend through the real CLI, against a real Ceph radosgw
// (scripts/radosgw.sh, shared by the run). A recording proxy in front of the
// gateway proves what went over the wire and injects part failures.
import {execFile, spawn} from 'node:child_process'
import {createCipheriv, createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'

import {CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client} from '@aws-sdk/client-s3'
import {expect} from 'chai'

import {BIN, cleanEnv, collect, runCli, spawnCli} from '../helpers/cli.js'
import {sharedRadosgw, type Radosgw} from '../helpers/radosgw.js'
import {gatewayClient} from '../helpers/s3-client.js'
import {S3Proxy} from '../helpers/s3-proxy.js'

const run = promisify(execFile)
const MiB = 1024 * 1024

/** Writes `size` bytes of seeded pseudo-random data (AES-CTR of zeros), so every run uploads the same file. */
async function writeSeeded(file: string, size: number, seed: string): Promise<string> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16)
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  const out = createWriteStream(file)
  const hash = createHash('sha256')
  const zeros = Buffer.alloc(MiB)
  for (let written = 0; written < size; written += MiB) {
    const chunk = cipher.update(zeros.subarray(0, Math.min(MiB, size - written)))
    hash.update(chunk)
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()))
  }

  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())))
  return hash.digest('hex')
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Runs the CLI under /usr/bin/time and returns its exit code and peak RSS in kB. */
async function runMeasured(args: string[], env: Record<string, string>): Promise<{code: number | null; stderr: string; maxRssKb: number}> {
  const child = spawn('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, BIN, ...args], {env: cleanEnv(env)})
  const result = await collect(child)
  const match = /maxrss=(\d+)/.exec(result.stderr)
  if (!match) throw new Error(`no RSS in: ${result.stderr}`)
  return {code: result.code, stderr: result.stderr, maxRssKb: Number(match[1])}
}

describe('s3: backend through the CLI, on Ceph radosgw', function () {
  this.timeout(180_000)
  let gateway: Radosgw
  let proxy: S3Proxy
  let client: S3Client
  let dir: string
  let env: Record<string, string>
  const bucket = `cli-${process.pid}-${Date.now().toString(36)}`

  before(async function () {
    this.timeout(240_000)
    gateway = await sharedRadosgw()
    proxy = await new S3Proxy(new URL(gateway.endpoint)).start()
    client = gatewayClient(gateway)
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-s3-'))
    env = {...gateway.env, S3_ENDPOINT: proxy.endpoint, HOME: dir}
    await client.send(new CreateBucketCommand({Bucket: bucket}))
  })

  after(async () => {
    if (!gateway) return
    await runCli(['rm', '-r', `s3:/${bucket}`], {env: {...gateway.env, HOME: dir}})
    client?.destroy()
    await proxy?.stop()
    if (dir) await fs.rm(dir, {recursive: true, force: true})
  })

  beforeEach(() => proxy.reset())

  async function pendingUploads(): Promise<unknown[]> {
    return (await client.send(new ListMultipartUploadsCommand({Bucket: bucket}))).Uploads ?? []
  }

  it('mkdir below a bucket succeeds and stores nothing; the empty prefix is then not found (exit 3)', async () => {
    const made = await runCli(['mkdir', `s3:/${bucket}/empty-dir/inner`], {env})
    expect(made.code, made.stderr).to.equal(0)
    expect((await client.send(new ListObjectsV2Command({Bucket: bucket, Prefix: 'empty-dir'}))).KeyCount).to.equal(0)
    const listed = await runCli(['ls', `s3:/${bucket}/empty-dir/inner`], {env})
    expect(listed.code, listed.stderr).to.equal(3)
  })

  it('lists buckets at s3:/, creates one with mkdir, and removes it with rm -r', async () => {
    const made = await runCli(['mkdir', 's3:/made-by-mkdir-' + process.pid], {env})
    expect(made.code, made.stderr).to.equal(0)
    const listed = await runCli(['ls', 's3:/', '--json'], {env})
    expect(listed.code, listed.stderr).to.equal(0)
    const names = (JSON.parse(listed.stdout) as Array<{name: string; type: string}>).map((e) => `${e.name}:${e.type}`)
    expect(names).to.include.members([`${bucket}:dir`, `made-by-mkdir-${process.pid}:dir`])
    const removed = await runCli(['rm', '-r', 's3:/made-by-mkdir-' + process.pid], {env})
    expect(removed.code, removed.stderr).to.equal(0)
    expect((await runCli(['ls', 's3:/made-by-mkdir-' + process.pid], {env})).code).to.equal(3)
  })

  it('refuses a bucket name S3 does not allow as a usage error (exit 2), saying what a name may be', async () => {
    const made = await runCli(['mkdir', 's3:/bk'], {env})
    expect(made.code, made.stderr).to.equal(2)
    expect(made.stderr).to.match(/invalid bucket name \(S3 bucket names are 3 to 63/)
  })

  it('uploads and downloads a 200 MiB file by multipart, identical, in under 200 MB of RSS each way', async function () {
    this.timeout(600_000)
    const source = path.join(dir, 'big.bin')
    const sum = await writeSeeded(source, 200 * MiB, 'big')
    const up = await runMeasured(['upload', source, `s3:/${bucket}/big/big.bin`, '-q'], env)
    expect(up.code, up.stderr).to.equal(0)
    const parts = proxy.seen.filter((r) => r.method === 'PUT' && r.url.includes('partNumber='))
    expect(parts.length).to.equal(25) // 8 MiB parts
    expect(up.maxRssKb, 'upload peak RSS kB').to.be.below(200_000)
    const head = await client.send(new HeadObjectCommand({Bucket: bucket, Key: 'big/big.bin'}))
    expect(head.ContentLength).to.equal(200 * MiB)
    expect(head.Metadata?.sha256).to.equal(sum)
    const back = path.join(dir, 'big.back')
    const down = await runMeasured(['download', `s3:/${bucket}/big/big.bin`, back, '-q'], env)
    expect(down.code, down.stderr).to.equal(0)
    expect(down.maxRssKb, 'download peak RSS kB').to.be.below(200_000)
    expect(await sha256Of(back)).to.equal(sum)
    expect(await pendingUploads()).to.deep.equal([])
    console.log(`      peak RSS: upload ${Math.round(up.maxRssKb / 1024)} MiB, download ${Math.round(down.maxRssKb / 1024)} MiB`)
    await fs.rm(back)
  })

  it('refuses a download whose content does not match the stored sha256, leaving no file', async () => {
    await client.send(
      new PutObjectCommand({Bucket: bucket, Key: 'tampered.txt', Body: 'not what was hashed', Metadata: {sha256: createHash('sha256').update('original').digest('hex')}}),
    )
    const target = path.join(dir, 'tampered.txt')
    const result = await runCli(['download', `s3:/${bucket}/tampered.txt`, target, '--retries', '0'], {env})
    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/sha256 mismatch/)
    expect(await fs.readdir(dir)).to.not.include('tampered.txt')
  })

  it('interoperates with s3cmd: it reads what we wrote, we read what it wrote', async () => {
    const mine = path.join(dir, 'mine.bin')
    const mySum = await writeSeeded(mine, 3 * MiB + 17, 'mine')
    expect((await runCli(['upload', mine, `s3:/${bucket}/interop/mine.bin`], {env})).code).to.equal(0)
    const host = new URL(gateway.endpoint).host
    const s3cmd = [
      '--no-ssl',
      `--host=${host}`,
      `--host-bucket=${host}`,
      `--access_key=${gateway.accessKeyId}`,
      `--secret_key=${gateway.secretAccessKey}`,
      '--config=/dev/null',
    ]
    const fetched = path.join(dir, 'by-s3cmd.bin')
    await run('s3cmd', [...s3cmd, 'get', `s3://${bucket}/interop/mine.bin`, fetched])
    expect(await sha256Of(fetched)).to.equal(mySum)
    const theirs = path.join(dir, 'theirs.bin')
    const theirSum = await writeSeeded(theirs, 20 * MiB + 5, 'theirs') // s3cmd sends it multipart (15 MiB parts)
    await run('s3cmd', [...s3cmd, 'put', theirs, `s3://${bucket}/interop/theirs.bin`])
    const listed = await runCli(['ls', `s3:/${bucket}/interop`, '--json'], {env})
    expect((JSON.parse(listed.stdout) as Array<{name: string; size: number}>).map((e) => [e.name, e.size])).to.deep.equal([
      ['mine.bin', 3 * MiB + 17],
      ['theirs.bin', 20 * MiB + 5],
    ])
    const back = path.join(dir, 'theirs.back')
    const down = await runCli(['download', `s3:/${bucket}/interop/theirs.bin`, back], {env})
    expect(down.code, down.stderr).to.equal(0)
    expect(await sha256Of(back)).to.equal(theirSum)
  })

  it('copies and moves server-side: files and prefixes, no content through the client', async () => {
    const file = path.join(dir, 'cp.bin')
    const sum = await writeSeeded(file, 12 * MiB, 'cp')
    for (const name of ['a.bin', 'sub/b.bin']) {
      expect((await runCli(['upload', file, `s3:/${bucket}/tree/${name}`], {env})).code).to.equal(0)
    }

    proxy.reset()
    const cp = await runCli(['cp', `s3:/${bucket}/tree/a.bin`, `s3:/${bucket}/copied.bin`], {env})
    expect(cp.code, cp.stderr).to.equal(0)
    const mv = await runCli(['mv', `s3:/${bucket}/tree`, `s3:/${bucket}/moved`], {env})
    expect(mv.code, mv.stderr).to.equal(0)
    expect(proxy.bytesSent(), 'request body bytes sent by cp and mv').to.be.below(64 * 1024)
    expect(proxy.seen.filter((r) => r.copySource).map((r) => decodeURIComponent(r.copySource!))).to.have.members([
      `${bucket}/tree/a.bin`,
      `${bucket}/tree/a.bin`,
      `${bucket}/tree/sub/b.bin`,
    ])
    // No object was read either (the SDK tags each GetObject URL with x-id=GetObject).
    expect(proxy.seen.filter((r) => r.method === 'GET' && r.url.includes('x-id=GetObject'))).to.deep.equal([])
    const keys = ((await client.send(new ListObjectsV2Command({Bucket: bucket}))).Contents ?? []).map((o) => o.Key)
    expect(keys).to.include.members(['copied.bin', 'moved/a.bin', 'moved/sub/b.bin'])
    expect(keys.filter((k) => k!.startsWith('tree/'))).to.deep.equal([])
    const object = await client.send(new GetObjectCommand({Bucket: bucket, Key: 'moved/sub/b.bin'}))
    expect(object.Metadata?.sha256).to.equal(sum)
    expect(createHash('sha256').update(await object.Body!.transformToByteArray()).digest('hex')).to.equal(sum)
  })

  it('removes a prefix with rm -r, after which ls says directory not found', async () => {
    const file = path.join(dir, 'small.txt')
    await fs.writeFile(file, 'small')
    for (const name of ['r/one.txt', 'r/two.txt', 'r/deep/three.txt', 'keep.txt']) {
      expect((await runCli(['upload', file, `s3:/${bucket}/${name}`], {env})).code).to.equal(0)
    }

    const plain = await runCli(['rm', `s3:/${bucket}/r`], {env})
    expect(plain.code).to.equal(2)
    const removed = await runCli(['rm', '-r', `s3:/${bucket}/r`], {env})
    expect(removed.code, removed.stderr).to.equal(0)
    expect((await client.send(new ListObjectsV2Command({Bucket: bucket, Prefix: 'r/'}))).KeyCount).to.equal(0)
    expect((await runCli(['ls', `s3:/${bucket}/r`], {env})).code).to.equal(3)
    expect((await runCli(['stat', `s3:/${bucket}/keep.txt`], {env})).code).to.equal(0)
  })

  it('exits 3 for a missing bucket, 4 for a missing key, 7 for a wrong secret, 5 for an unreachable endpoint', async () => {
    const target = path.join(dir, 'nothing')
    const noBucket = await runCli(['ls', 's3:/no-such-bucket-here'], {env})
    expect(noBucket.code, noBucket.stderr).to.equal(3)
    const noBucketFile = await runCli(['download', 's3:/no-such-bucket-here/x', target], {env})
    expect(noBucketFile.code, noBucketFile.stderr).to.equal(3)
    const noKey = await runCli(['download', `s3:/${bucket}/no-such-key`, target], {env})
    expect(noKey.code, noKey.stderr).to.equal(4)
    expect(noKey.stderr.trim().split('\n')).to.have.length(1)
    const wrong = await runCli(['ls', `s3:/${bucket}`], {env: {...env, S3_SECRET_ACCESS_KEY: 'wrong-secret'}})
    expect(wrong.code, wrong.stderr).to.equal(7)
    expect(wrong.stderr).to.match(/credentials were rejected \(SignatureDoesNotMatch\)/)
    const unknownKey = await runCli(['ls', 's3:/'], {env: {...env, S3_ACCESS_KEY_ID: 'NOSUCHKEY'}})
    expect(unknownKey.code, unknownKey.stderr).to.equal(7)
    const closed = await closedPort()
    const down = await runCli(['ls', 's3:/', '--retries', '0'], {env: {...env, S3_ENDPOINT: `http://127.0.0.1:${closed}`}})
    expect(down.code, down.stderr).to.equal(5)
  })

  it('aborts the multipart upload when a part fails: nothing is left on the gateway', async () => {
    const file = path.join(dir, 'fails.bin')
    await writeSeeded(file, 40 * MiB, 'fails')
    proxy.options = {failPart: 3}
    const result = await runCli(['upload', file, `s3:/${bucket}/fails.bin`, '--retries', '0'], {env})
    expect(result.code).to.not.equal(0)
    expect(proxy.seen.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).to.equal(true)
    expect(await pendingUploads()).to.deep.equal([])
    expect((await runCli(['stat', `s3:/${bucket}/fails.bin`], {env})).code).to.equal(4)
  })

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`aborts the multipart upload on ${signal}: nothing is left on the gateway`, async () => {
      const file = path.join(dir, `${signal}.bin`)
      await writeSeeded(file, 64 * MiB, signal)
      proxy.options = {stallFromPart: 2}
      const child = spawnCli(['upload', file, `s3:/${bucket}/${signal}.bin`], {env})
      const done = collect(child)
      await proxy.until((r) => r.method === 'PUT' && r.url.includes('partNumber=2'))
      expect(await pendingUploads()).to.have.length(1)
      child.kill(signal)
      const result = await done
      expect(result.code, result.stderr).to.equal(signal === 'SIGINT' ? 130 : 143)
      expect(result.stderr).to.match(/1 upload\(s\) aborted/)
      expect(await pendingUploads()).to.deep.equal([])
    })
  }
})

async function closedPort(): Promise<number> {
  const net = await import('node:net')
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}
