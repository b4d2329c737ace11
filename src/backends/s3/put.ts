import {createHash} from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type {Readable} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'

import type {WriteOptions} from '../adapter.js'
import {DiskError, IntegrityError, TemporaryError, UsageError} from '../errors.js'
import {interrupted, trackAbort} from '../../base/index.js'
import {mapS3Error} from './errors.js'
import type {HeadAgents} from './head.js'
import {objectTarget, type ObjectTarget, type S3Access, signRequest} from './sigv4.js'
import {copySourceOf, MAX_COPY_OBJECT, MAX_PARTS, PART_SIZE, QUEUE_SIZE} from './sizes.js'

/** A connection that says nothing for this long has failed. */
const TIMEOUT_MS = 60_000
/** Error and reply bodies kept (the XML of CreateMultipartUpload, CompleteMultipartUpload, CopyObject, or an error). */
const BODY_MAX = 64 * 1024

export interface PutResult {
  size: number
  sha256: string
}

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** An error shaped like the SDK's (S3 code as `name`, status in `$metadata`), so mapS3Error reads it the same way. */
function replyError(status: number, body: string): Error {
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? (status === 404 ? 'NotFound' : `Http${status}`)
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1] ?? `HTTP ${status}`
  return Object.assign(new Error(message), {name: code, $metadata: {httpStatusCode: status}})
}

const xmlText = (body: string, tag: string): string | undefined =>
  new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(body)?.[1]?.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>')

/** RFC 3986 encoding of a query value, as SigV4 wants it. */
const encodeQuery = (value: string): string => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

/**
 * Streams `source` to `bucket/key` with requests of our own, signed by
 * sigv4.ts (the SDK, hundreds of milliseconds to load, is not needed): a
 * body under one part is one PutObject carrying `x-amz-meta-sha256`; a
 * larger one a multipart upload of PART_SIZE parts, QUEUE_SIZE in flight,
 * read into at most QUEUE_SIZE + 1 reused buffers whatever the file's size.
 * Each part is signed with its own SHA-256 (as the SDK and rclone do over
 * http). A multipart upload's metadata is fixed when it starts: the
 * caller's expected hash goes there, else the object copies itself
 * server-side with the hash once complete. A part that fails (after
 * `retries` attempts on 5xx and network errors), an aborted signal or
 * SIGINT/SIGTERM sends AbortMultipartUpload, so no parts are left stored.
 */
export async function putObject(
  access: S3Access,
  agents: HeadAgents,
  bucket: string,
  key: string,
  source: Readable,
  options: WriteOptions,
  what: string,
  retries: number,
): Promise<PutResult> {
  const target = objectTarget(access, bucket, key)
  const agent = target.secure ? agents.https : agents.http
  const requests = new Set<http.ClientRequest>()
  let stopped: Error | undefined

  /** One signed request; the reply's body is kept up to BODY_MAX. */
  const send = (method: string, query: string, headers: Record<string, string>, body?: Buffer, payloadHash?: string, always = false): Promise<Reply> => {
    const at: ObjectTarget = query === '' ? target : {...target, path: `${target.path}?${query}`}
    const all: Record<string, string> = {...headers}
    if (body !== undefined || method === 'PUT' || method === 'POST') all['content-length'] = String(body?.length ?? 0)
    const signed = signRequest(access, method, at, all, new Date(), payloadHash ?? createHash('sha256').update(body ?? '').digest('hex'))
    const request = at.secure ? https.request : http.request
    return new Promise((resolve, reject) => {
      if (stopped && !always) {
        reject(stopped)
        return
      }

      const req = request({host: at.hostname, port: at.port, path: at.path, method, headers: signed, agent, timeout: TIMEOUT_MS}, (res) => {
        const chunks: Buffer[] = []
        let kept = 0
        res.on('data', (chunk: Buffer) => {
          if (kept < BODY_MAX) chunks.push(chunk)
          kept += chunk.length
        })
        res.on('end', () => {
          requests.delete(req)
          resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8')})
        })
        res.on('error', reject)
      })
      requests.add(req)
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no reply for ${TIMEOUT_MS / 1000} s`), {code: 'ETIMEDOUT'})))
      req.on('error', (error) => {
        requests.delete(req)
        reject(error)
      })
      req.end(body)
    })
  }

  /** `send` until a 2xx without an <Error> body (CompleteMultipartUpload and CopyObject can fail with 200), tried again on 5xx and network errors. */
  const call = async (method: string, query: string, headers: Record<string, string>, body?: Buffer, payloadHash?: string, always = false): Promise<Reply> => {
    for (let attempt = 0; ; attempt++) {
      let error: unknown
      try {
        const reply = await send(method, query, headers, body, payloadHash, always)
        if (reply.status >= 200 && reply.status < 300 && !/^\s*(<\?xml[^>]*>\s*)?<Error>/.test(reply.body)) return reply
        error = replyError(reply.status >= 300 ? reply.status : 500, reply.body)
      } catch (failure) {
        error = failure
      }

      if (stopped && !always) throw stopped
      const mapped = mapS3Error(error, what, 'dir')
      if (!(mapped instanceof TemporaryError) || attempt >= retries) throw mapped
      await sleep(100 * 4 ** attempt)
    }
  }

  const expected = options.expect?.sha256?.toLowerCase()
  const partSize = Math.max(PART_SIZE, Math.ceil((options.size ?? 0) / MAX_PARTS))
  const whole = createHash('sha256')
  let total = 0
  let uploadId: Promise<string> | undefined
  let created: string | undefined
  let completed = false
  const create = (): Promise<string> => {
    uploadId ??= call('POST', 'uploads=', expected ? {'x-amz-meta-sha256': expected} : {}).then((reply) => {
      const id = xmlText(reply.body, 'UploadId')
      if (!id) throw new TemporaryError(`${what}: no UploadId in the reply to CreateMultipartUpload`)
      created = id
      return id
    })
    return uploadId
  }

  let aborting: Promise<void> | undefined
  /**
   * Stops (interrupted: `destroy`, the requests in flight at once; else once
   * they have their replies) and aborts the multipart upload, once. Parts
   * are let finish first because a part whose body the gateway has whole
   * can still be stored after the abort, and would leave the upload pending.
   */
  const abortRemote = (destroy = true): Promise<void> => {
    aborting ??= (async () => {
      stopped ??= new TemporaryError(`${what}: aborted`)
      if (destroy) for (const req of requests) req.destroy(stopped)
      await Promise.all(inFlight)
      const id = created ?? (await uploadId?.catch(() => undefined))
      if (!id || completed) return
      await call('DELETE', `uploadId=${encodeQuery(id)}`, {}, undefined, undefined, true).catch(() => {})
    })()
    return aborting
  }

  const untrack = trackAbort(async () => abortRemote())
  const onAbort = (): void => void abortRemote()
  options.signal?.addEventListener('abort', onAbort, {once: true})

  // Buffers: one filling, the others with a part in flight; reused.
  const free: Buffer[] = []
  const inFlight = new Set<Promise<void>>()
  const etags: string[] = []
  let failure: unknown
  let current: Buffer | undefined
  let fill = 0
  let parts = 0

  const sendPart = (buffer: Buffer, length: number): void => {
    const number = ++parts
    if (number > MAX_PARTS) throw new UsageError(`${what}: more than ${MAX_PARTS} parts of ${partSize} bytes`)
    const body = buffer.subarray(0, length)
    const hash = createHash('sha256').update(body).digest('hex')
    const running = create()
      .then((id) => call('PUT', `partNumber=${number}&uploadId=${encodeQuery(id)}`, {}, body, hash))
      .then((reply) => {
        etags[number - 1] = String(reply.headers.etag ?? '')
      })
      .catch((error: unknown) => {
        failure ??= error
      })
      .finally(() => {
        inFlight.delete(running)
        free.push(buffer)
      })
    inFlight.add(running)
  }

  try {
    try {
      // Known to be multipart: ask for the upload id while the first part is read.
      if ((options.size ?? 0) > partSize) void create().catch(() => {})
      for await (const chunk of source as AsyncIterable<Buffer>) {
        whole.update(chunk)
        total += chunk.length
        options.onProgress?.(total)
        let offset = 0
        while (offset < chunk.length) {
          if (current && fill === partSize) {
            // A full part with more to come: send it, at most QUEUE_SIZE in flight.
            sendPart(current, fill)
            current = undefined
            while (inFlight.size >= QUEUE_SIZE && failure === undefined) await Promise.race(inFlight)
          }

          if (failure !== undefined || stopped) break
          if (!current) {
            current = free.pop() ?? Buffer.allocUnsafe(partSize)
            fill = 0
          }

          const n = chunk.copy(current, fill, offset)
          fill += n
          offset += n
        }

        if (failure !== undefined || stopped) break
      }
    } catch (error) {
      // The source failed (a self-verifying read is already typed).
      failure ??= error
    }

    if (failure === undefined && !stopped) {
      const sha256 = whole.digest('hex')
      if (expected && expected !== sha256) throw new IntegrityError(`${what}: sha256 mismatch (expected ${expected}, got ${sha256})`)
      if (parts === 0) {
        // One PutObject: the hash rides in its metadata; nothing is visible until it is all in.
        const body = current?.subarray(0, fill) ?? Buffer.alloc(0)
        await call('PUT', '', {'x-amz-meta-sha256': sha256}, body, createHash('sha256').update(body).digest('hex'))
        return {size: total, sha256}
      }

      if (current && fill > 0) sendPart(current, fill)
      current = undefined
      await Promise.all(inFlight)
      if (failure === undefined && !stopped) {
        const id = await create()
        const xml = `<CompleteMultipartUpload>${etags.map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${etag.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}</ETag></Part>`).join('')}</CompleteMultipartUpload>`
        const done = await call('POST', `uploadId=${encodeQuery(id)}`, {'content-type': 'application/xml'}, Buffer.from(xml))
        completed = true
        untrack()
        if (!expected && total <= MAX_COPY_OBJECT) {
          // The metadata of a multipart upload is fixed by CreateMultipartUpload, before the hash is known.
          const etag = xmlText(done.body, 'ETag')
          await call('PUT', '', {
            'x-amz-copy-source': `/${copySourceOf(bucket, key)}`,
            ...(etag ? {'x-amz-copy-source-if-match': etag} : {}),
            'x-amz-metadata-directive': 'REPLACE',
            'x-amz-meta-sha256': sha256,
          }).catch((error: unknown) => {
            throw mapS3Error(error, `${what}: cannot store its sha256`)
          })
        }

        return {size: total, sha256}
      }
    }

    // Interrupted: the signal handler is aborting the upload and exits 130/143; reporting this failure would race it.
    if (interrupted()) await new Promise(() => {})
    const error = failure ?? stopped
    await abortRemote(false)
    throw error instanceof DiskError ? error : mapS3Error(error, what, 'dir')
  } catch (error) {
    if (uploadId !== undefined && !completed) await abortRemote(false)
    throw error
  } finally {
    untrack()
    options.signal?.removeEventListener('abort', onAbort)
    if (!source.destroyed && (failure !== undefined || stopped)) source.destroy()
  }
}
