// One throwaway Ceph radosgw for the whole mocha run (scripts/radosgw.sh):
// started by the first test that asks for it, shared by every S3 test, and
// stopped by the root afterAll hook in test/setup.ts.
import {execFile} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import type {BackendSettings} from '../../src/backends/adapter.js'

const run = promisify(execFile)
const SCRIPT = fileURLToPath(new URL('../../scripts/radosgw.sh', import.meta.url))

export interface Radosgw {
  dir: string
  endpoint: string
  accessKeyId: string
  secretAccessKey: string
  /** The variables that point the CLI at this gateway. */
  env: Record<string, string>
}

// The tests' own S3 clients: no Node 22 notice in the test output (the CLI sets the same).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

let starting: Promise<Radosgw> | undefined

/** The shared gateway, started on first use (about 15–20 s). Give the calling hook a 180 s timeout. */
/** Backend settings for the s3 backend on this gateway: no retries, nothing else configured. */
export function s3SettingsFor(gateway: Radosgw, secretAccessKey = gateway.secretAccessKey): BackendSettings {
  return {
    retries: 0,
    retryBaseMs: 1,
    yandexApiUrl: '',
    localRoot: '',
    dataDir: '',
    s3Endpoint: gateway.endpoint,
    s3AccessKeyId: gateway.accessKeyId,
    s3SecretAccessKey: secretAccessKey,
    log: () => {},
  }
}

export function sharedRadosgw(): Promise<Radosgw> {
  starting ??= start()
  return starting
}

/**
 * Starts the gateway, trying a second and third time in a fresh folder if a
 * start fails (a Ceph daemon can turn a command away while it settles); the
 * last failure is reported with the logs.
 */
async function start(): Promise<Radosgw> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce()
    } catch (error) {
      if (attempt >= 3) throw error
      console.error(`radosgw start, attempt ${attempt} of 3, failed: ${(error as Error).message.split('\n')[0]}`)
    }
  }
}

async function startOnce(): Promise<Radosgw> {
  const dir = mkdtempSync(path.join(tmpdir(), 'disk-client-rgw-'))
  let stdout: string
  try {
    ;({stdout} = await run('sh', [SCRIPT, 'start', dir], {timeout: 150_000}))
  } catch (error) {
    const logs = logTail(dir)
    await run('sh', [SCRIPT, 'stop', dir]).catch(() => {})
    throw new Error(`radosgw did not start: ${(error as Error).message}\n${logs}`)
  }

  const vars = Object.fromEntries(
    stdout
      .trim()
      .split(/\s+/)
      .map((pair) => pair.split('=', 2) as [string, string]),
  )
  return {
    dir,
    endpoint: vars.S3_ENDPOINT,
    accessKeyId: vars.S3_ACCESS_KEY_ID,
    secretAccessKey: vars.S3_SECRET_ACCESS_KEY,
    env: {S3_ENDPOINT: vars.S3_ENDPOINT, S3_ACCESS_KEY_ID: vars.S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY: vars.S3_SECRET_ACCESS_KEY},
  }
}

function logTail(dir: string): string {
  const logDir = path.join(dir, 'log')
  if (!existsSync(logDir)) return ''
  return readdirSync(logDir)
    .map((name) => `--- ${name}\n${readFileSync(path.join(logDir, name), 'utf8').split('\n').slice(-15).join('\n')}`)
    .join('\n')
}

/** Stops the shared gateway if this run started one (root afterAll hook). */
export async function stopSharedRadosgw(): Promise<void> {
  if (!starting) return
  const gateway = await starting.catch(() => undefined)
  starting = undefined
  if (gateway) await run('sh', [SCRIPT, 'stop', gateway.dir], {timeout: 30_000})
}
