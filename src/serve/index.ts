// The serve subsystem: our backends as servers for other people's clients.
export {WebDavServer, type WebDavServerOptions} from './webdav.js'
