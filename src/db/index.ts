/**
 * `src/db/`: a main database with replicas over the Redis replication
 * protocol (DESIGN.md §11). The one door: commands and tests import from here.
 */
export {DbMain, type DbMainOptions, type SyncMode} from './main.js'
export {Dataset} from './dataset.js'
export {Backlog} from './backlog.js'
export {RdbReader, writeRdb, rdbSize, RDB_WRITE_VERSION, type RdbEntry, type Snapshot} from './rdb.js'
export {Crc64} from './crc64.js'
export {lzfDecompress} from './lzf.js'
export {DbReplica, type DbReplicaOptions} from './replica.js'
export {syncReplicas, fetchReads, parseReads, type ReadStats} from './admin.js'
export {DbProxy, type DbProxyOptions} from './proxy.js'
