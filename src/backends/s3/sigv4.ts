import {createHash, createHmac} from 'node:crypto'

/** What a request outside the SDK needs to reach and sign for an S3 service. */
export interface S3Access {
  /** The endpoint URL; undefined: AWS, `https://s3.REGION.amazonaws.com`. */
  endpoint?: string
  region: string
  forcePathStyle: boolean
  accessKeyId: string
  secretAccessKey: string
}

/** Where one object's requests go: the connection and the request line's path (encoded as signed). */
export interface ObjectTarget {
  secure: boolean
  hostname: string
  port: number
  /** The Host header. */
  host: string
  path: string
}

/** RFC 3986 encoding as SigV4 wants it: everything but unreserved characters, `/` kept between segments. */
function encodePath(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/')
}

/** The URL of an object: path style (`/bucket/key`) with an endpoint or when forced, else virtual-hosted on AWS. */
export function objectTarget(access: S3Access, bucket: string, key: string): ObjectTarget {
  const virtual = !access.forcePathStyle && /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket)
  const base = new URL(access.endpoint ?? `https://s3.${access.region}.amazonaws.com`)
  const secure = base.protocol === 'https:'
  const hostname = virtual ? `${bucket}.${base.hostname}` : base.hostname
  const port = base.port === '' ? (secure ? 443 : 80) : Number(base.port)
  const prefix = base.pathname.replace(/\/$/, '')
  const path = `${prefix}${virtual ? '' : `/${encodePath(bucket)}`}/${encodePath(key)}`
  return {secure, hostname: hostname.replace(/^\[|\]$/g, ''), port, host: base.port === '' ? hostname : `${hostname}:${base.port}`, path}
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest()

/**
 * Signs a bodiless request with AWS Signature Version 4 (headers, payload
 * UNSIGNED-PAYLOAD): returns `headers` with `x-amz-date`,
 * `x-amz-content-sha256` and `authorization` added. Every header given is
 * signed; names must be lower case.
 */
export function signRequest(
  access: S3Access,
  method: string,
  target: ObjectTarget,
  headers: Record<string, string>,
  now = new Date(),
  payloadHash = 'UNSIGNED-PAYLOAD',
): Record<string, string> {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
  const day = stamp.slice(0, 8)
  const all: Record<string, string> = {...headers, host: target.host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': stamp}
  const names = Object.keys(all).sort()
  const [path, query = ''] = target.path.split('?', 2)
  const canonical = [method, path, query, ...names.map((name) => `${name}:${all[name].trim()}`), '', names.join(';'), payloadHash].join('\n')
  const scope = `${day}/${access.region}/s3/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', stamp, scope, createHash('sha256').update(canonical).digest('hex')].join('\n')
  const key = hmac(hmac(hmac(hmac(`AWS4${access.secretAccessKey}`, day), access.region), 's3'), 'aws4_request')
  const signature = createHmac('sha256', key).update(toSign).digest('hex')
  return {
    ...all,
    authorization: `AWS4-HMAC-SHA256 Credential=${access.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
  }
}
