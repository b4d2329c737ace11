// The one call the site tests make into express-pouchdb (the package ships no types).
declare module 'express-pouchdb' {
  import type {RequestHandler} from 'express'
  export default function expressPouchDB(PouchDB: unknown, options?: Record<string, unknown>): RequestHandler
}
declare module 'express' {
  import type http from 'node:http'
  type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse, next?: (error?: unknown) => void) => void
  interface Express extends RequestHandler {
    use(path: string, handler: RequestHandler): Express
  }
  export default function express(): Express
  export type {RequestHandler}
}
