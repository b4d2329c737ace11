// JSON shapes of the Yandex.Disk REST API (https://yandex.com/dev/disk-api/doc/en/),
// only the fields this client reads, as rclone keeps them in backend/yandex/api/types.go.

/** A file or folder (the `Resource` object). Paths look like `disk:/a/b`. */
export interface Resource {
  name: string
  path: string
  type: 'dir' | 'file'
  /** Bytes; files only. */
  size?: number
  created?: string
  modified?: string
  md5?: string
  sha256?: string
  mime_type?: string
  /** The public link, once published (`PUT /resources/publish`). */
  public_url?: string
  /** A folder's entries, one page of them, when the folder was asked for. */
  _embedded?: ResourceList
}

/** One page of a folder's entries (the `ResourceList` object). */
export interface ResourceList {
  items: Resource[]
  path?: string
  sort?: string
  limit: number
  offset: number
  /** Entries in the folder altogether, across every page. */
  total: number
}

/** A URL to follow next (the `Link` object): an upload or download target, or an operation's status. */
export interface Link {
  href: string
  method: string
  templated?: boolean
  /** Present on upload links. */
  operation_id?: string
}

/** The status of an asynchronous copy, move or delete (the `Operation` object). */
export interface Operation {
  status: 'success' | 'failed' | 'in-progress'
}

/** Disk information (`GET /v1/disk/`), in bytes. */
export interface DiskInfo {
  total_space: number
  used_space: number
  trash_size: number
  max_file_size?: number
  is_paid?: boolean
}

/** The body of every API error (the `Error` object). */
export interface ApiErrorBody {
  /** The machine-readable code, e.g. `DiskNotFoundError`. */
  error: string
  /** A human-readable message, often in Russian. */
  message?: string
  /** A human-readable description, in English. */
  description?: string
}

export function isApiErrorBody(value: unknown): value is ApiErrorBody {
  return typeof value === 'object' && value !== null && typeof (value as ApiErrorBody).error === 'string'
}

/** An item in the Trash (`GET /trash/resources`): `path` is `trash:/…`, `origin_path` where it was. */
export interface TrashResource extends Resource {
  origin_path?: string
  deleted?: string
  _embedded?: ResourceList & {items: TrashResource[]}
}
