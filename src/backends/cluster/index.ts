import type {BackendFactory} from '../adapter.js'
import {ClusterBackend} from './adapter.js'
import {startEmbedded} from './embedded.js'
import {RespClusterStore} from './kv-store.js'

export {ClusterBackend} from './adapter.js'

/**
 * The cluster backend: against the router at DISK_CLUSTER, or, when that is
 * unset, against an embedded router and server run inside this process.
 */
export const createClusterBackend: BackendFactory = async (settings) => {
  if (settings.cluster) return new ClusterBackend(new RespClusterStore(settings.cluster))
  const embedded = await startEmbedded(settings.dataDir)
  settings.log(`embedded cluster on ${embedded.router}, data in ${settings.dataDir}`)
  const store = new RespClusterStore(embedded.router)
  return new ClusterBackend(store, {onClose: () => embedded.stop()})
}
