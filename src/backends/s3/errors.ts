import {AuthError, ConflictError, DiskError, NotFoundError, OperationFailedError, TemporaryError, UsageError} from '../errors.js'

/** What the SDK's errors carry: the S3 error code as `name`, the HTTP status in `$metadata`. */
interface SdkError {
  name?: string
  Code?: string
  code?: string
  message?: string
  $metadata?: {httpStatusCode?: number}
  $retryable?: unknown
}

/** The S3 error code of an SDK error (`NoSuchKey`, `NotFound` for a HEAD 404, …). */
export function s3Code(error: unknown): string | undefined {
  const e = error as SdkError
  return e?.Code ?? e?.name
}

export function httpStatus(error: unknown): number | undefined {
  return (error as SdkError)?.$metadata?.httpStatusCode
}

/** True for a 404 of any kind: NoSuchKey, NoSuchBucket, or a HEAD's bodiless NotFound. */
export function isMissing(error: unknown): boolean {
  return httpStatus(error) === 404 || ['NoSuchKey', 'NoSuchBucket', 'NotFound'].includes(s3Code(error) ?? '')
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH'])

/**
 * Maps an SDK error to the typed errors (exit codes of DESIGN.md §2):
 * a missing bucket is a missing directory (3), a missing key is `missing`
 * (4 for a file), rejected credentials are fatal (7), network failures,
 * throttling and 5xx are temporary (5).
 */
export function mapS3Error(error: unknown, what: string, missing: 'file' | 'dir' = 'file'): DiskError {
  if (error instanceof DiskError) return error
  const code = s3Code(error)
  const status = httpStatus(error)
  const options = {backendCode: code, cause: error}
  const detail = (error as SdkError)?.message
  switch (code) {
    case 'NoSuchBucket':
      return new NotFoundError(`${what}: bucket not found`, 'dir', options)
    case 'NoSuchKey':
    case 'NotFound':
      return new NotFoundError(`${what}: ${missing === 'dir' ? 'directory' : 'file'} not found`, missing, options)
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'AccessDenied':
    case 'Forbidden':
    case 'InvalidToken':
    case 'ExpiredToken':
      return new AuthError(`${what}: the S3 credentials were rejected`, {...options, hint: 'check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY'})
    case 'BucketAlreadyExists':
    case 'BucketAlreadyOwnedByYou':
      return new ConflictError(`${what}: bucket already exists`, 'exists', options)
    case 'BucketNotEmpty':
      return new ConflictError(`${what}: bucket not empty`, 'not-empty', options)
    case 'QuotaExceeded':
    case 'EntityTooLarge':
      return new ConflictError(`${what}: no space (${code})`, 'no-space', options)
    case 'InvalidBucketName':
      // The SDK's own message for it is "UnknownError" (radosgw's reply carries no message).
      return new UsageError(`${what}: invalid bucket name (S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens)`, options)
    case 'KeyTooLongError':
    case 'InvalidArgument':
      return new UsageError(`${what}: ${detail ?? code}`, options)
    case 'SlowDown':
    case 'ServiceUnavailable':
    case 'InternalError':
    case 'RequestTimeout':
    case 'TimeoutError':
      return new TemporaryError(`${what}: ${detail ?? code}`, options)
    default:
      break
  }

  if (status === 404) return new NotFoundError(`${what}: ${missing === 'dir' ? 'directory' : 'file'} not found`, missing, options)
  if (status === 401 || status === 403) return new AuthError(`${what}: the S3 credentials were rejected`, options)
  if (status !== undefined && (status >= 500 || status === 429)) return new TemporaryError(`${what}: HTTP ${status}`, options)
  const errno = (error as {code?: string})?.code ?? ((error as {cause?: {code?: string}})?.cause?.code)
  if (errno && NETWORK_CODES.has(errno)) {
    return new TemporaryError(`${what}: cannot reach the S3 endpoint (${errno})`, {backendCode: errno, cause: error})
  }

  if (status === undefined && (error as SdkError)?.$metadata !== undefined && !code?.match(/^[A-Z]/)) {
    return new TemporaryError(`${what}: ${detail ?? 'network error'}`, options)
  }

  return new OperationFailedError(`${what}: ${detail ?? code ?? String(error)}`, options)
}
