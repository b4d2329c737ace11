import type {IncomingMessage, ServerResponse} from 'node:http'

import {UsageError} from '../base/index.js'
import {describeError, type ErrorJson} from '../cli/report-error.js'

/** The HTTP status that fits a CLI exit code (DESIGN.md §2): the API's errors keep the CLI's shape. */
export function statusFor(error: ErrorJson['error']): number {
  switch (error.exitCode) {
    case 2:
      return 400
    case 3:
    case 4:
      return 404
    case 5:
      return 503
    case 6:
      return error.code === 'ENOSPACE' ? 507 : 409
    case 7:
      return 502
    default:
      return 500
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store'})
  res.end(text)
}

/** Answers with `{"error": {code, message, exitCode}}`, or cuts the connection when a body was already under way. */
export function sendError(res: ServerResponse, error: unknown, status?: number): void {
  const described = describeError(error)
  if (res.headersSent) {
    res.destroy(error instanceof Error ? error : undefined)
    return
  }

  sendJson(res, status ?? statusFor(described), {error: described})
}

/** A plain error in the CLI's shape, for refusals that are not backend errors (401, 403, 421, 404 routes). */
export function refuse(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, {error: {code, message, exitCode: status === 404 ? 4 : status === 401 || status === 403 ? 7 : 2}})
}

const JSON_LIMIT = 64 * 1024

/** Reads a small JSON object body; anything else is a UsageError (400). */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > JSON_LIMIT) throw new UsageError(`request body over ${JSON_LIMIT} bytes`)
    chunks.push(chunk)
  }

  let value: unknown
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new UsageError('request body is not JSON')
  }

  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('request body must be a JSON object')
  return value as Record<string, unknown>
}

/** A required string field of a JSON body. */
export function field(body: Record<string, unknown>, name: string): string {
  const value = body[name]
  if (typeof value !== 'string' || value === '') throw new UsageError(`missing "${name}" (a path string)`)
  return value
}

/**
 * `Content-Disposition` for a download: a plain ASCII `filename` for old
 * clients and RFC 5987 `filename*` with the UTF-8 name.
 */
export function contentDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_') || 'download'
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`
}
