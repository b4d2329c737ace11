import type {BackendFactory} from '../adapter.js'
import {ClusterBackend} from './adapter.js'

export {ClusterBackend} from './adapter.js'
export type {EmbeddedStore} from './embedded.js'

/**
 * The cluster backend: against the router at DISK_CLUSTER, or, when that is
 * unset, the embedded mode: the storage engine in this process, or attached
 * to the process that holds the data dir (embedded.ts).
 */
export const createClusterBackend: BackendFactory = async (settings) => {
  // Each mode loads only its own store: the router's client, or the storage engine.
  if (settings.cluster) {
    const {RespClusterStore} = await import('./kv-store.js')
    return new ClusterBackend(new RespClusterStore(settings.cluster))
  }

  const {EmbeddedStore} = await import('./embedded.js')
  const store = await EmbeddedStore.open(settings.dataDir, {log: settings.log})
  settings.log(`embedded cluster, data in ${settings.dataDir}`)
  return new ClusterBackend(store)
}
