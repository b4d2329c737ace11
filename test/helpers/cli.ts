import {spawn, type ChildProcess, type SpawnOptions} from 'node:child_process'
import {readFileSync, readdirSync, readlinkSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

/** The real entry point, built by `npm test`'s pretest step. */
export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** Set when the process was killed for running past `timeoutMs`: what it was doing then (Linux /proc), for the failure message. */
  hung?: string
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  input?: string | Buffer
  /** Kill the process after this many ms (the result then has signal SIGKILL). */
  timeoutMs?: number
}

/**
 * Runs `disk-client ARGS` through bin/run.js and collects stdout, stderr and
 * the exit code. The environment is the caller's, on top of a clean copy of
 * this process's environment with every DISK_/YANDEX_ variable removed, and
 * HOME pointed at a throwaway folder unless given.
 */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options)
  return collect(child, options)
}

export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('DISK_') && !key.startsWith('YANDEX_')) env[key] = value
  }
  delete env.NODE_OPTIONS
  return {...env, ...extra}
}

export function spawnCli(args: string[], options: CliOptions & {stdio?: SpawnOptions['stdio']} = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    stdio: options.stdio ?? ['pipe', 'pipe', 'pipe'],
  })
}

export function collect(child: ChildProcess, options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    let hung: string | undefined
    const timer = options.timeoutMs
      ? setTimeout(() => {
          hung = `killed after ${options.timeoutMs} ms; ${describeProcess(child.pid)}`
          child.kill('SIGKILL')
        }, options.timeoutMs)
      : undefined
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      resolve({code, signal, stdout, stderr, ...(hung === undefined ? {} : {hung})})
    })
    if (options.input !== undefined) child.stdin?.end(options.input)
    else child.stdin?.end()
  })
}

/** What a live process waits on: its state, kernel wait channel and open files (sockets, pipes), from /proc; best effort. */
export function describeProcess(pid: number | undefined): string {
  if (pid === undefined) return 'no pid'
  const read = (file: string): string => {
    try {
      return readFileSync(`/proc/${pid}/${file}`, 'utf8').trim()
    } catch {
      return '?'
    }
  }
  const state = read('status').split('\n').find((line) => line.startsWith('State:')) ?? 'State: ?'
  let fds = '?'
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
      .map((fd) => {
        try {
          return `${fd}->${readlinkSync(`/proc/${pid}/fd/${fd}`)}`
        } catch {
          return fd
        }
      })
      .join(' ')
  } catch {
    // Not Linux, or already gone.
  }
  return `${state}, wchan ${read('wchan')}, fds ${fds}`
}
