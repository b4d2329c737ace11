import {AuthError, ConflictError, DiskError, NotFoundError, OperationFailedError, TemporaryError} from './errors.js'

/**
 * Maps a Node.js filesystem error to the typed errors. `missing` says what
 * an ENOENT means at this call site: the path itself, or its directory.
 */
export function mapFsError(error: unknown, what: string, missing: 'file' | 'dir' = 'file'): DiskError {
  if (error instanceof DiskError) return error
  const code = (error as NodeJS.ErrnoException)?.code
  const options = {backendCode: code, cause: error}
  switch (code) {
    case 'ENOENT':
      return new NotFoundError(`${what}: ${missing === 'dir' ? 'directory' : 'file or directory'} not found`, missing, options)
    case 'ENOTDIR':
      return new NotFoundError(`${what}: a parent is not a directory`, 'dir', options)
    case 'EEXIST':
    case 'ENOTEMPTY':
      return new ConflictError(`${what}: destination already exists`, code === 'EEXIST' ? 'exists' : 'not-empty', {
        ...options,
        hint: code === 'EEXIST' ? 'use --overwrite' : undefined,
      })
    case 'EISDIR':
      return new ConflictError(`${what}: is a directory`, 'is-directory', options)
    case 'ENOSPC':
    case 'EDQUOT':
      return new ConflictError(`${what}: no space left on device`, 'no-space', options)
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new AuthError(`${what}: permission denied`, options)
    case 'EAGAIN':
    case 'EBUSY':
    case 'EMFILE':
    case 'ENFILE':
    case 'EIO':
      return new TemporaryError(`${what}: ${(error as Error).message}`, options)
    default:
      return new OperationFailedError(`${what}: ${(error as Error)?.message ?? String(error)}`, options)
  }
}
