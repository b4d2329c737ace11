import http from 'node:http'
import https from 'node:https'
import {setTimeout as sleep} from 'node:timers/promises'

import {TemporaryError} from '../errors.js'
import {mapS3Error} from './errors.js'
import {objectTarget, type S3Access, signRequest} from './sigv4.js'

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

/** An error shaped like the SDK's (S3 code as `name`, status in `$metadata`), for mapS3Error. */
function statusError(status: number): Error {
  const name = status === 404 ? 'NotFound' : status === 403 ? 'Forbidden' : status === 301 ? 'PermanentRedirect' : `Http${status}`
  return Object.assign(new Error(`HTTP ${status}`), {name, $metadata: {httpStatusCode: status}})
}

function once(access: S3Access, bucket: string, key: string, agents: HeadAgents): Promise<{status: number; headers: http.IncomingHttpHeaders}> {
  const target = objectTarget(access, bucket, key)
  const headers = signRequest(access, 'HEAD', target, {})
  const request = target.secure ? https.request : http.request
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.path,
        method: 'HEAD',
        headers,
        agent: target.secure ? agents.https : agents.http,
        timeout: TIMEOUT_MS,
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers}))
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
      const {status, headers} = await once(access, bucket, key, agents)
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
