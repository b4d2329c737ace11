import type dotenv from 'dotenv'
import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import os from 'node:os'
import path from 'node:path'

import type {BackendSettings} from '../backends/adapter.js'
import {UsageError} from '../base/index.js'
import {type BackendName, isBackendName} from '../backends/remote-path.js'
import type {ConfigValues} from './config-file.js'

/** The backend used when nothing chooses one (DESIGN.md §2). */
export const DEFAULT_BACKEND: BackendName = 'cluster'
export const DEFAULT_YANDEX_API_URL = 'https://cloud-api.yandex.net/v1/disk'

/** Loads `.env` from the working directory into process.env; real environment variables win. */
export function loadDotEnv(cwd = process.cwd()): void {
  const file = path.join(cwd, '.env')
  // dotenv loads only when it has something to do (a .env, or DOTENV_KEY for
  // its vault): most runs have neither.
  if (!process.env.DOTENV_KEY && !existsSync(file)) return
  const dotenvModule = createRequire(import.meta.url)('dotenv') as typeof dotenv
  dotenvModule.config({path: file, override: false, quiet: true})
}

export interface SettingsInput {
  /** `--backend`, `--token`, `--retries`, `--router` as given on the command line. */
  flags: {backend?: string; token?: string; retries?: number; router?: string}
  env: NodeJS.ProcessEnv
  config: ConfigValues
  log?: (message: string) => void
}

export interface ResolvedSettings extends BackendSettings {
  defaultBackend: BackendName
  /** The BitTorrent tracker's announce URL (`DISK_TRACKER`): the cluster's public links are torrents registered there. */
  tracker?: string
}

/** Resolves every setting by the precedence flag > environment (incl. .env) > config file > default. */
export function resolveSettings({flags, env, config, log = () => {}}: SettingsInput): ResolvedSettings {
  const pick = (flag: string | undefined, variable: string, key: keyof ConfigValues): string | undefined =>
    nonEmpty(flag) ?? nonEmpty(env[variable]) ?? nonEmpty(config[key])
  const home = os.homedir()
  const backend = pick(flags.backend, 'DISK_BACKEND', 'backend') ?? DEFAULT_BACKEND
  if (!isBackendName(backend)) {
    throw new UsageError(`unknown backend "${backend}"; use yandex, local or cluster`)
  }

  const retryBase = Number(env.DISK_RETRY_BASE_MS ?? 500)
  return {
    defaultBackend: backend,
    retries: flags.retries ?? 5,
    retryBaseMs: Number.isFinite(retryBase) && retryBase >= 0 ? retryBase : 500,
    token: pick(flags.token, 'YANDEX_DISK_TOKEN', 'yandex.token'),
    yandexApiUrl: pick(undefined, 'YANDEX_DISK_API_URL', 'yandex.apiUrl') ?? DEFAULT_YANDEX_API_URL,
    localRoot: expandHome(pick(undefined, 'DISK_LOCAL_ROOT', 'local.root') ?? path.join(home, '.local/share/disk-client/local')),
    cluster: pick(flags.router, 'DISK_CLUSTER', 'cluster.router'),
    dataDir: expandHome(pick(undefined, 'DISK_DATA_DIR', 'cluster.dataDir') ?? path.join(home, '.local/share/disk-client/cluster')),
    ...s3Settings(pick),
    webdavUrl: pick(undefined, 'WEBDAV_URL', 'webdav.url'),
    webdavUser: pick(undefined, 'WEBDAV_USER', 'webdav.user'),
    webdavPassword: pick(undefined, 'WEBDAV_PASSWORD', 'webdav.password'),
    tracker: pick(undefined, 'DISK_TRACKER', 'torrent.tracker'),
    log,
  }
}

/** The S3 settings of DESIGN.md §14: `S3_…` variables, then the `AWS_…` names for the keys, then `s3.*` config keys. */
function s3Settings(pick: (flag: undefined, variable: string, key: keyof ConfigValues) => string | undefined): Partial<BackendSettings> {
  const endpoint = pick(undefined, 'S3_ENDPOINT', 's3.endpoint')
  const pathStyle = pick(undefined, 'S3_FORCE_PATH_STYLE', 's3.forcePathStyle')
  if (pathStyle !== undefined && !/^(true|false|1|0)$/i.test(pathStyle)) {
    throw new UsageError(`S3_FORCE_PATH_STYLE must be true or false, not "${pathStyle}"`)
  }

  return {
    s3Endpoint: endpoint,
    s3Region: pick(undefined, 'S3_REGION', 's3.region') ?? pick(undefined, 'AWS_REGION', 's3.region') ?? 'us-east-1',
    s3AccessKeyId: pick(undefined, 'S3_ACCESS_KEY_ID', 's3.accessKeyId') ?? pick(undefined, 'AWS_ACCESS_KEY_ID', 's3.accessKeyId'),
    s3SecretAccessKey:
      pick(undefined, 'S3_SECRET_ACCESS_KEY', 's3.secretAccessKey') ?? pick(undefined, 'AWS_SECRET_ACCESS_KEY', 's3.secretAccessKey'),
    s3ForcePathStyle: pathStyle === undefined ? endpoint !== undefined : /^(true|1)$/i.test(pathStyle),
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : path.resolve(p)
}
