/** The torrent room's one door (DESIGN.md §10): commands import from here only. */
export * from './metainfo.js'
export {BencodeError, decode as bdecode, encode as bencode} from './bencode.js'
export {createTorrent, defaultPieceLength, checkPieceLength, type CreateOptions, type CreatedTorrent} from './create.js'
