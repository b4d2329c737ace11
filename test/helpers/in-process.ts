// Runs the real oclif entry point (src/cli/main.ts) inside the test process,
// so that nock can intercept the Yandex.Disk API. stdout, stderr and the
// exit code are captured exactly as bin/run.js would produce them.
import {fileURLToPath} from 'node:url'

import {run} from '../../src/cli/main.js'
import type {CliResult} from './cli.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export async function runInProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const saved = {...process.env}
  const savedExitCode = process.exitCode
  for (const key of Object.keys(process.env)) {
    if (key.startsWith('DISK_') || key.startsWith('YANDEX_')) delete process.env[key]
  }

  Object.assign(process.env, env)
  let stdout = ''
  let stderr = ''
  const writeOut = process.stdout.write.bind(process.stdout)
  const writeErr = process.stderr.write.bind(process.stderr)
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += chunk.toString()
    return true
  }) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString()
    return true
  }) as typeof process.stderr.write
  process.exitCode = undefined
  try {
    await run(args, ROOT)
    return {code: typeof process.exitCode === 'number' ? process.exitCode : 0, signal: null, stdout, stderr}
  } finally {
    process.stdout.write = writeOut
    process.stderr.write = writeErr
    process.exitCode = savedExitCode
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key]
    Object.assign(process.env, saved)
  }
}
