import {checkValue, invalidParams, member} from './faults.js'
import {parseSnapshot, type Snapshot, type WriteOp} from './store.js'

/**
 * The one parameter of `put_backup`, the master-to-backup path: a struct
 * naming the view it belongs to and the master sending it, plus either one
 * forwarded operation or a whole copy of the state.
 *
 * - `op: "put" | "append"` with `key`, `value` and optional `request_id`:
 *   apply the write (at most once per request id) and answer its reply.
 * - `op: "get"` with `key`: confirm that the sender is still the master,
 *   i.e. this server is still the backup of `view`. Answers "OK".
 * - `op: "sync"` with `data` and `applied` (arrays of [key, value] and
 *   [request id, reply] pairs): replace the whole state. Answers "OK".
 *
 * A backup refuses (`ErrWrongServer`) anything whose `view` and `from` do not
 * match its own view, and forwarded operations until it got a sync for it.
 */
export type BackupRequest =
  | {view: number; from: string; op: WriteOp; key: string; value: string; requestId?: string}
  | {view: number; from: string; op: 'get'; key: string}
  | {view: number; from: string; op: 'sync'; snapshot: Snapshot}

/** The struct that travels for a request. */
export function encodeBackupRequest(request: BackupRequest): Record<string, unknown> {
  const {view, from, op} = request
  switch (request.op) {
    case 'sync':
      return {view, from, op, data: request.snapshot.data, applied: request.snapshot.applied}
    case 'get':
      return {view, from, op, key: request.key}
    default:
      return {
        view,
        from,
        op,
        key: request.key,
        value: request.value,
        ...(request.requestId === undefined ? {} : {request_id: request.requestId}),
      }
  }
}

/** Reads and checks a received struct; throws an invalid-params fault. */
export function decodeBackupRequest(struct: Record<string, unknown>): BackupRequest {
  const field = <T>(name: string, kind: 'string' | 'int'): T => {
    const value = member(struct, name)
    checkValue(`put_backup ${name}`, value, kind)
    return value as T
  }
  const view = field<number>('view', 'int')
  const from = field<string>('from', 'string')
  const op = field<string>('op', 'string')
  switch (op) {
    case 'sync':
      return {view, from, op, snapshot: parseSnapshot(member(struct, 'data'), member(struct, 'applied'))}
    case 'get':
      return {view, from, op, key: field('key', 'string')}
    case 'put':
    case 'append': {
      const requestId = member(struct, 'request_id') === undefined ? undefined : field<string>('request_id', 'string')
      return {view, from, op, key: field('key', 'string'), value: field('value', 'string'), requestId}
    }
    default:
      throw invalidParams(`put_backup op must be put, append, get or sync, got ${JSON.stringify(op)}`)
  }
}
