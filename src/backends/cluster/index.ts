import type {BackendFactory} from '../adapter.js'
import {ClusterBackend} from './adapter.js'
import {EmbeddedStore} from './embedded.js'
import {RespClusterStore} from './kv-store.js'

export {ClusterBackend} from './adapter.js'
export {EmbeddedStore} from './embedded.js'

/**
 * The cluster backend: against the router at DISK_CLUSTER, or, when that is
 * unset, the embedded mode: the storage engine in this process, or attached
 * to the process that holds the data dir (embedded.ts).
 */
export const createClusterBackend: BackendFactory = async (settings) => {
  if (settings.cluster) return new ClusterBackend(new RespClusterStore(settings.cluster))
  const store = await EmbeddedStore.open(settings.dataDir, {log: settings.log})
  settings.log(`embedded cluster, data in ${settings.dataDir}`)
  return new ClusterBackend(store)
}
