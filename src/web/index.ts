/**
 * The web console (DESIGN.md §13): `disk-client web` serves the home,
 * upload, download, cluster and torrents screens and their JSON API over the
 * same adapters and src/ops functions the CLI uses.
 */
export {WebServer, type WebServerOptions} from './server.js'
export {API_ROUTES} from './api.js'
