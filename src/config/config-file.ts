import {randomBytes} from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

import {UsageError} from '../base/index.js'

/** The keys `disk-client config set` accepts, each with the variable that overrides it. */
export const CONFIG_KEYS = {
  backend: {env: 'DISK_BACKEND', description: 'default backend: yandex, local or cluster', secret: false},
  'yandex.token': {env: 'YANDEX_DISK_TOKEN', description: 'Yandex.Disk OAuth token', secret: true},
  'yandex.apiUrl': {env: 'YANDEX_DISK_API_URL', description: 'Yandex.Disk API base URL', secret: false},
  'cluster.router': {env: 'DISK_CLUSTER', description: 'router address host:port; unset = embedded', secret: false},
  'cluster.dataDir': {env: 'DISK_DATA_DIR', description: 'data folder of the embedded cluster', secret: false},
  'local.root': {env: 'DISK_LOCAL_ROOT', description: 'root folder of the local backend', secret: false},
  's3.endpoint': {env: 'S3_ENDPOINT', description: 'S3 endpoint URL; unset = AWS', secret: false},
  's3.region': {env: 'S3_REGION', description: 'S3 region (default us-east-1)', secret: false},
  's3.accessKeyId': {env: 'S3_ACCESS_KEY_ID', description: 'S3 access key id (else AWS_ACCESS_KEY_ID)', secret: false},
  's3.secretAccessKey': {env: 'S3_SECRET_ACCESS_KEY', description: 'S3 secret key (else AWS_SECRET_ACCESS_KEY)', secret: true},
  's3.forcePathStyle': {env: 'S3_FORCE_PATH_STYLE', description: 'path-style S3 URLs: true or false (default true with an endpoint)', secret: false},
  'webdav.url': {env: 'WEBDAV_URL', description: 'WebDAV server root URL, e.g. https://host/dav', secret: false},
  'webdav.user': {env: 'WEBDAV_USER', description: 'WebDAV user (basic auth)', secret: false},
  'webdav.password': {env: 'WEBDAV_PASSWORD', description: 'WebDAV password (basic auth)', secret: true},
  'torrent.tracker': {env: 'DISK_TRACKER', description: 'BitTorrent tracker announce URL: `share` on the cluster registers a torrent there', secret: false},
} as const
export type ConfigKey = keyof typeof CONFIG_KEYS

export function isConfigKey(key: string): key is ConfigKey {
  return Object.hasOwn(CONFIG_KEYS, key)
}

export function assertConfigKey(key: string): ConfigKey {
  if (!isConfigKey(key)) {
    throw new UsageError(`unknown config key "${key}"; known keys: ${Object.keys(CONFIG_KEYS).join(', ')}`)
  }

  return key
}

/** Shows a secret's first and last characters only. */
export function redact(value: string): string {
  if (value.length <= 8) return '*'.repeat(value.length)
  return `${value.slice(0, 3)}…${value.slice(-3)}`
}

export type ConfigValues = Partial<Record<ConfigKey, string>>

/** The config file (`~/.config/disk-client/config.json`, mode 0600), written atomically. */
export class ConfigFile {
  constructor(readonly file: string) {}

  async read(): Promise<ConfigValues> {
    let text: string
    try {
      text = await fs.readFile(this.file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
      throw error
    }

    try {
      const parsed = JSON.parse(text) as Record<string, unknown>
      const values: ConfigValues = {}
      for (const [key, value] of Object.entries(parsed)) {
        if (isConfigKey(key) && typeof value === 'string') values[key] = value
      }

      return values
    } catch {
      throw new UsageError(`the config file ${this.file} is not valid JSON; fix or remove it`)
    }
  }

  async set(key: ConfigKey, value: string | undefined): Promise<void> {
    const values = await this.read()
    if (value === undefined) delete values[key]
    else values[key] = value
    await fs.mkdir(path.dirname(this.file), {recursive: true, mode: 0o700})
    const temp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`
    await fs.writeFile(temp, JSON.stringify(values, null, 2) + '\n', {mode: 0o600})
    await fs.rename(temp, this.file)
    await fs.chmod(this.file, 0o600)
  }
}
