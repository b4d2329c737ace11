// The few PouchDB calls the site tests make (the package ships no types).
declare module 'pouchdb' {
  interface Doc {
    _id: string
    _rev?: string
    _deleted?: boolean
    _conflicts?: string[]
    [key: string]: unknown
  }
  interface ReplicationResult {
    ok: boolean
    docs_read: number
    docs_written: number
    doc_write_failures: number
    errors: unknown[]
  }
  interface Replication extends Promise<ReplicationResult> {
    cancel(): void
  }
  class PouchDB {
    constructor(name: string, options?: Record<string, unknown>)
    put(doc: Doc): Promise<{ok: boolean; id: string; rev: string}>
    get(id: string, options?: Record<string, unknown>): Promise<Doc>
    remove(doc: Doc): Promise<{ok: boolean; id: string; rev: string}>
    allDocs(options?: Record<string, unknown>): Promise<{total_rows: number; rows: Array<{id: string; value: {rev: string; deleted?: boolean}; doc?: Doc}>}>
    info(): Promise<{doc_count: number; update_seq: number | string}>
    bulkDocs(docs: Doc[], options?: Record<string, unknown>): Promise<unknown[]>
    replicate: {
      to(target: string | PouchDB, options?: Record<string, unknown>): Replication
      from(source: string | PouchDB, options?: Record<string, unknown>): Replication
    }
    close(): Promise<void>
    destroy(): Promise<void>
    static replicate(source: string | PouchDB, target: string | PouchDB, options?: Record<string, unknown>): Replication
  }
  export default PouchDB
}
