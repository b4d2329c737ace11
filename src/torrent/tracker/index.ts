/** The tracker: HTTP and UDP (BEP 15) on one port number, the peer table, the torrent pool. */
export {TrackerServer, type TrackerOptions} from './server.js'
export {Swarms, type AnnounceEvent, type AnnounceRequest, type AnnounceReply, type PeerEntry, type SwarmCounts} from './swarms.js'
export {TorrentPool, type PoolEntry} from './pool.js'
export {encodeAnnounceReply, parseAnnounce, TrackerRequestError} from './http-codec.js'
export {parseUdpRequest, UdpIgnore, UdpRequestError} from './udp-codec.js'
