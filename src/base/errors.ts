/**
 * Typed errors shared by every backend and every server tool. Callers test
 * them with `instanceof`; the CLI turns them into exit codes in one place
 * (`exitCodeFor`), in the manner of rclone's sentinel errors.
 */

/** Exit codes of DESIGN.md §2, rclone's meanings. */
export const ExitCode = {
  OK: 0,
  OTHER: 1,
  USAGE: 2,
  DIR_NOT_FOUND: 3,
  FILE_NOT_FOUND: 4,
  TEMPORARY: 5,
  CONFLICT: 6,
  FATAL: 7,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

export interface DiskErrorOptions {
  /** The backend's own error code, e.g. `DiskNotFoundError`, shown in brackets. */
  backendCode?: string
  /** A hint appended after a semicolon, e.g. "use --overwrite". */
  hint?: string
  cause?: unknown
}

/** Base class: one failure with a machine-readable code and an exit code. */
export class DiskError extends Error {
  /** Stable code for `--json` output, e.g. `ENOTFOUND_FILE`. */
  readonly code: string = 'EOTHER'
  readonly exitCode: ExitCode = ExitCode.OTHER
  readonly backendCode?: string
  readonly hint?: string

  constructor(message: string, options: DiskErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = new.target.name
    this.backendCode = options.backendCode
    this.hint = options.hint
  }

  /** The one-line text shown to the user (without the `Error: ` prefix). */
  get line(): string {
    let text = this.message
    if (this.backendCode) text += ` (${this.backendCode})`
    if (this.hint) text += `; ${this.hint}`
    return text
  }

  /** The same failure with a context prefix, e.g. "cannot move /a to /b: ". */
  withContext(prefix: string): this {
    const copy = Object.create(Object.getPrototypeOf(this)) as this
    Object.assign(copy, this)
    copy.message = `${prefix}: ${this.message}`
    copy.stack = this.stack
    return copy
  }
}

/** Bad arguments, flags or paths (exit 2). */
export class UsageError extends DiskError {
  override readonly code: string = 'EUSAGE'
  override readonly exitCode: ExitCode = ExitCode.USAGE
}

/** A directory (exit 3) or a file (exit 4) does not exist. */
export class NotFoundError extends DiskError {
  override readonly code: string
  override readonly exitCode: ExitCode
  constructor(
    message: string,
    readonly kind: 'dir' | 'file' = 'file',
    options: DiskErrorOptions = {},
  ) {
    super(message, options)
    this.code = kind === 'dir' ? 'ENOTFOUND_DIR' : 'ENOTFOUND_FILE'
    this.exitCode = kind === 'dir' ? ExitCode.DIR_NOT_FOUND : ExitCode.FILE_NOT_FOUND
  }
}

/** The destination exists, a directory is not empty, or there is no space (exit 6). */
export class ConflictError extends DiskError {
  override readonly code: string
  override readonly exitCode: ExitCode = ExitCode.CONFLICT
  constructor(
    message: string,
    readonly reason: 'exists' | 'not-empty' | 'no-space' | 'is-directory' | 'not-directory' = 'exists',
    options: DiskErrorOptions = {},
  ) {
    super(message, options)
    this.code = reason === 'no-space' ? 'ENOSPACE' : 'ECONFLICT'
  }
}

/** Missing or rejected credentials (exit 7); never retried. */
export class AuthError extends DiskError {
  override readonly code: string = 'EAUTH'
  override readonly exitCode: ExitCode = ExitCode.FATAL
}

/** A failure that may pass if tried again: network, 5xx, 429, 423, a cluster down (exit 5). */
export class TemporaryError extends DiskError {
  override readonly code: string = 'ETEMPORARY'
  override readonly exitCode: ExitCode = ExitCode.TEMPORARY
  constructor(
    message: string,
    options: DiskErrorOptions & {
      /** Milliseconds the server asked us to wait (Retry-After). */
      retryAfterMs?: number
    } = {},
  ) {
    super(message, options)
    this.retryAfterMs = options.retryAfterMs
  }

  readonly retryAfterMs?: number
}

/** Content did not match its hash (exit 1 once retries are spent). */
export class IntegrityError extends DiskError {
  override readonly code: string = 'EINTEGRITY'
}

/** A server-side operation that ended `failed`, or any other error (exit 1). */
export class OperationFailedError extends DiskError {
  override readonly code: string = 'EFAILED'
}

/** A deadline passed. Same exit code as a temporary failure that persisted (5). */
export class TimeoutError extends TemporaryError {
  override readonly code: string = 'ETIMEDOUT'
}

/** The exit code for any thrown value: typed errors carry theirs, anything else is 1. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof DiskError) return error.exitCode
  return ExitCode.OTHER
}

/** True for errors worth retrying. */
export function isTemporary(error: unknown): error is TemporaryError {
  return error instanceof TemporaryError
}

/**
 * Says what was being done in a typed error's message: `cannot copy A to B:
 * <reason>`. A backend's own `cannot write B:` prefix gives way to the
 * caller's wording, which names what the user asked for.
 */
export function addContext(error: unknown, context: string): unknown {
  if (!(error instanceof DiskError) || error.message.startsWith(context + ':')) return error
  // The backend's own "cannot write /x: " or "/x: " prefix gives way to the caller's wording.
  const reason = error.message.replace(/^cannot [^:]*: /, '').replace(/^\/[^:]*: (?=.)/, (prefix) =>
    context.includes(prefix.slice(0, -2)) ? '' : prefix,
  )
  const copy = error.withContext(context)
  copy.message = `${context}: ${reason}`
  return copy
}
