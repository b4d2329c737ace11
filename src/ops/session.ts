import type {StorageAdapter} from '../backends/adapter.js'
import {LocalBackend} from '../backends/local/index.js'
import {createBackend} from '../backends/registry.js'
import {type BackendName, normalizePath, parseRemotePath} from '../backends/remote-path.js'
import type {ResolvedSettings} from '../config/settings.js'
import nodePath from 'node:path'

/** A path on a backend: what every operation works on. */
export interface Target {
  adapter: StorageAdapter
  backend: BackendName | 'host'
  /** Normalised absolute path on that backend. */
  path: string
}

/**
 * One command's view of the backends: resolves `yandex:/a`-style paths to
 * adapters, creating each backend once, on first use, and closing them all
 * at the end.
 */
export class Session {
  private readonly adapters = new Map<BackendName, Promise<StorageAdapter>>()
  private host?: LocalBackend

  constructor(readonly settings: ResolvedSettings) {}

  backend(name: BackendName): Promise<StorageAdapter> {
    let adapter = this.adapters.get(name)
    if (!adapter) {
      adapter = createBackend(name, this.settings)
      this.adapters.set(name, adapter)
      // A backend that failed to start is tried again on the next use, not remembered as failed.
      adapter.catch(() => {
        if (this.adapters.get(name) === adapter) this.adapters.delete(name)
      })
    }

    return adapter
  }

  /** Resolves a remote path as the user wrote it: prefix, else the default backend. */
  async remote(input: string): Promise<Target> {
    const parsed = parseRemotePath(input)
    const backend = parsed.backend ?? this.settings.defaultBackend
    return {adapter: await this.backend(backend), backend, path: parsed.path}
  }

  /** A path on this machine's filesystem (upload source, download destination), relative to the cwd. */
  local(input: string): Target {
    this.host ??= new LocalBackend('/')
    return {adapter: this.host, backend: 'host', path: normalizePath(nodePath.resolve(input), input)}
  }

  /** Closes every backend opened so far; a second call closes nothing twice. */
  async close(): Promise<void> {
    const opened = [...this.adapters.values()]
    this.adapters.clear()
    const adapters = await Promise.allSettled(opened)
    for (const result of adapters) {
      if (result.status === 'fulfilled') await result.value.close?.()
    }
  }
}
