import http from 'node:http'
import https from 'node:https'
import {setTimeout as sleep} from 'node:timers/promises'

import {NotFoundError, TemporaryError} from '../errors.js'
import {mapS3Error} from './errors.js'
import {objectTarget, type ObjectTarget, type S3Access, signRequest} from './sigv4.js'

/** What a HEAD of an object says. */
export interface Head {
  size: number
  modified: Date | undefined
  /** `x-amz-meta-*` headers, by the name after the prefix. */
  metadata: Record<string, string | undefined>
}

/** Attempts after the first for a HEAD that failed on the network or with 5xx, as the SDK does (its default: 2). */
const RETRIES = 2
const TIMEOUT_MS = 30_000

/** The keep-alive agents of one backend; `destroy` closes their idle connections. */
export class HeadAgents {
  readonly http = new http.Agent({keepAlive: true, maxSockets: 8})
  readonly https = new https.Agent({keepAlive: true, maxSockets: 8})
  destroy(): void {
    this.http.destroy()
    this.https.destroy()
  }
}

/** An error shaped like the SDK's (S3 code as `name`, status in `$metadata`), for mapS3Error; the code from an XML error body when there is one. */
function statusError(status: number, body = ''): Error {
  const name =
    /<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? (status === 404 ? 'NotFound' : status === 403 ? 'Forbidden' : status === 301 ? 'PermanentRedirect' : `Http${status}`)
  return Object.assign(new Error(/<Message>([^<]*)<\/Message>/.exec(body)?.[1] ?? `HTTP ${status}`), {name, $metadata: {httpStatusCode: status}})
}

/** The target of a bucket request (HeadBucket, ListObjectsV2): `/bucket` path style, `/` virtual-hosted, `query` appended. */
function bucketTarget(access: S3Access, bucket: string, query = ''): ObjectTarget {
  const target = objectTarget(access, bucket, '')
  const path = target.path.length > 1 ? target.path.replace(/\/$/, '') : target.path
  return {...target, path: query === '' ? path : `${path}?${query}`}
}

function once(
  access: S3Access,
  target: ObjectTarget,
  agents: HeadAgents,
  method = 'HEAD',
): Promise<{status: number; headers: http.IncomingHttpHeaders; body: string}> {
  const headers = signRequest(access, method, target, {})
  const request = target.secure ? https.request : http.request
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.path,
        method,
        headers,
        agent: target.secure ? agents.https : agents.http,
        timeout: TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = []
        let kept = 0
        res.on('data', (chunk: Buffer) => {
          if (kept < 64 * 1024) chunks.push(chunk)
          kept += chunk.length
        })
        res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8')}))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(Object.assign(new Error('HEAD timed out'), {code: 'ETIMEDOUT'})))
    req.on('error', reject)
    req.end()
  })
}

/**
 * A signed HEAD of an object, made without the SDK: the object's size, time
 * and metadata, or undefined when it does not exist (404). Network failures
 * and 5xx are tried again twice; other replies are mapped as the SDK's errors are.
 */
export async function headObject(access: S3Access, bucket: string, key: string, what: string, agents: HeadAgents): Promise<Head | undefined> {
  for (let attempt = 0; ; attempt++) {
    let error: unknown
    try {
      const {status, headers} = await once(access, objectTarget(access, bucket, key), agents)
      if (status === 404) return undefined
      if (status >= 200 && status < 300) {
        const metadata: Record<string, string | undefined> = {}
        for (const [name, value] of Object.entries(headers)) {
          if (name.startsWith('x-amz-meta-')) metadata[name.slice('x-amz-meta-'.length)] = Array.isArray(value) ? value.join(',') : value
        }

        const modified = headers['last-modified'] ? new Date(headers['last-modified']) : undefined
        return {size: Number(headers['content-length'] ?? 0), modified, metadata}
      }

      error = statusError(status)
    } catch (failure) {
      error = failure
    }

    const mapped = mapS3Error(error, what)
    if (!(mapped instanceof TemporaryError) || attempt >= RETRIES) throw mapped
    await sleep(100 * 4 ** attempt)
  }
}

/** `once`, tried again on network errors and 5xx like headObject; other non-2xx replies are mapped errors. */
async function retried(access: S3Access, target: ObjectTarget, agents: HeadAgents, method: string, what: string, missing: 'file' | 'dir') {
  for (let attempt = 0; ; attempt++) {
    let error: unknown
    try {
      const reply = await once(access, target, agents, method)
      if (reply.status >= 200 && reply.status < 300) return reply
      error = statusError(reply.status, reply.body)
    } catch (failure) {
      error = failure
    }

    const mapped = mapS3Error(error, what, missing)
    if (!(mapped instanceof TemporaryError) || attempt >= RETRIES) throw mapped
    await sleep(100 * 4 ** attempt)
  }
}

/** A signed HeadBucket of our own: true when the bucket exists, false on 404. */
export async function headBucket(access: S3Access, bucket: string, what: string, agents: HeadAgents): Promise<boolean> {
  try {
    await retried(access, bucketTarget(access, bucket), agents, 'HEAD', what, 'file')
    return true
  } catch (error) {
    if (error instanceof NotFoundError) return false
    throw error
  }
}

/** A signed ListObjectsV2 of one key of our own: true when some key starts with `prefix` (a missing bucket is NotFoundError('dir')). */
export async function anyKeyUnder(access: S3Access, bucket: string, prefix: string, what: string, agents: HeadAgents): Promise<boolean> {
  const query = `list-type=2&max-keys=1&prefix=${encodeURIComponent(prefix).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`
  const {body} = await retried(access, bucketTarget(access, bucket, query), agents, 'GET', what, 'dir')
  const count = /<KeyCount>(\d+)<\/KeyCount>/.exec(body)?.[1]
  return count === undefined ? /<Contents>/.test(body) : Number(count) > 0
}
