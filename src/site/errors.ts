/** A CouchDB-style error: HTTP status plus `{"error", "reason"}`. */
export class CouchError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly reason: string,
  ) {
    super(`${error}: ${reason}`)
    this.name = 'CouchError'
  }

  toJSON(): {error: string; reason: string} {
    return {error: this.error, reason: this.reason}
  }
}

export const badRequest = (reason: string): CouchError => new CouchError(400, 'bad_request', reason)
export const notFound = (reason = 'missing'): CouchError => new CouchError(404, 'not_found', reason)
export const conflict = (): CouchError => new CouchError(409, 'conflict', 'Document update conflict.')
