import type {BackendFactory, BackendSettings, StorageAdapter} from './adapter.js'
import {UsageError} from './errors.js'
import type {BackendName} from './remote-path.js'

/**
 * Every backend, registered in one place (as rclone's backend/all). Each is
 * loaded on first use, so `ls` on the local folder never loads the HTTP stack.
 */
const factories: Partial<Record<BackendName, () => Promise<BackendFactory>>> = {
  local: async () => (await import('./local/index.js')).createLocalBackend,
  yandex: async () => (await import('./yandex/index.js')).createYandexBackend,
  cluster: async () => (await import('./cluster/index.js')).createClusterBackend,
  s3: async () => (await import('./s3/index.js')).createS3Backend,
  webdav: async () => (await import('./webdav/index.js')).createWebDavBackend,
}

export function registeredBackends(): BackendName[] {
  return Object.keys(factories) as BackendName[]
}

export async function createBackend(name: BackendName, settings: BackendSettings): Promise<StorageAdapter> {
  const load = factories[name]
  if (!load) throw new UsageError(`the ${name} backend is not available in this build`)
  const factory = await load()
  return factory(settings)
}
