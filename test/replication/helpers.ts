import type {ChildProcess} from 'node:child_process'
import http from 'node:http'
import {setTimeout as sleep} from 'node:timers/promises'

import xmlrpc from 'xmlrpc'

import {spawnCli} from '../helpers/cli.js'

/** One of our processes, started through bin/run.js. */
export interface Proc {
  child: ChildProcess
  /** `http://HOST:PORT/`, from its `listening http HOST:PORT` line. */
  url: string
  stderr(): string
}

/** A fault or error from the `xmlrpc` package's client. */
export interface CallError extends Error {
  faultCode?: number
  faultString?: string
}

/**
 * Starts and tracks processes and an XML-RPC client (the `xmlrpc` npm
 * package's, a third party to our server). `cleanup()` kills every process
 * and closes every connection; call it in afterEach.
 */
export class Harness {
  private readonly procs = new Set<ChildProcess>()
  private readonly agent = new http.Agent({keepAlive: false})

  async start(args: string[]): Promise<Proc> {
    const child = spawnCli(args)
    this.procs.add(child)
    let stdout = ''
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line from ${args.join(' ')}; stderr: ${stderr}`)), 15_000)
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk
        const match = /^listening http (\S+):(\d+)$/m.exec(stdout)
        if (match) {
          clearTimeout(timer)
          resolve(`http://${match[1]}:${match[2]}/`)
        }
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${args.join(' ')} exited ${code ?? signal}; stderr: ${stderr}`))
      })
    })
    return {child, url, stderr: () => stderr}
  }

  coordinator(...flags: string[]): Promise<Proc> {
    return this.start(['replication', 'coordinator', '--port', '0', ...flags])
  }

  server(coordinator: string, ...flags: string[]): Promise<Proc> {
    return this.start(['replication', 'server', '--coordinator', coordinator, '--port', '0', ...flags])
  }

  /** Calls `method(params)` at `url` (any path) with the xmlrpc package's client. */
  call(url: string, method: string, ...params: unknown[]): Promise<unknown> {
    const target = new URL(url)
    const client = xmlrpc.createClient({
      host: target.hostname,
      port: Number(target.port),
      path: target.pathname,
      agent: this.agent,
    } as Parameters<typeof xmlrpc.createClient>[0])
    return new Promise((resolve, reject) => {
      client.methodCall(method, params, (error, value) => (error ? reject(error) : resolve(value)))
    })
  }

  /** The fault a call gets; fails if it succeeds. */
  async fault(url: string, method: string, ...params: unknown[]): Promise<CallError> {
    try {
      const value = await this.call(url, method, ...params)
      throw new Error(`${method} succeeded with ${JSON.stringify(value)}; a fault was expected`)
    } catch (error) {
      if ((error as CallError).faultString === undefined) throw error
      return error as CallError
    }
  }

  /** SIGKILLs a process and waits until it is gone. */
  async kill(proc: Proc): Promise<void> {
    await killAndWait(proc.child)
    this.procs.delete(proc.child)
  }

  async cleanup(): Promise<void> {
    await Promise.all([...this.procs].map((child) => killAndWait(child)))
    this.procs.clear()
    this.agent.destroy()
  }
}

function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })
}

/** Polls `probe` until it returns a truthy value (errors count as not yet), or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value) return value
      last = value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`)
    await sleep(everyMs)
  }
}

export interface ViewStruct {
  number: number
  master: string
  backup: string
}
