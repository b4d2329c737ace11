import {randomUUID} from 'node:crypto'
import http from 'node:http'
import {setTimeout as sleep} from 'node:timers/promises'

import {NotFoundError, OperationFailedError, TimeoutError, UsageError} from '../base/index.js'
import {RpcFault} from './faults.js'
import {callRpc, normalizeUrl} from './rpc-client.js'

export interface ReplicationClientOptions {
  /** The coordinator's URL or `host:port`. */
  coordinator: string
  /** Each operation retries through failover until this many milliseconds have passed; default 10000. */
  timeoutMs?: number
}

/** Longest single call; a master waiting on its backup answers well within it. */
const CALL_TIMEOUT_MS = 3000
const MAX_BACKOFF_MS = 200

/**
 * A client of the replicated store. It caches the master's name from the
 * coordinator's `master()`, and on `ErrWrongServer`, `ErrUnavailable` or a
 * network failure forgets it, waits briefly and asks again, until the
 * deadline. A write carries one generated request id through all its
 * retries, so it takes effect at most once.
 */
export class ReplicationClient {
  private readonly coordinator: string
  private readonly timeoutMs: number
  private readonly agent = new http.Agent({keepAlive: true, timeout: 2000})
  private master = ''

  constructor(options: ReplicationClientOptions) {
    try {
      this.coordinator = normalizeUrl(options.coordinator)
    } catch (error) {
      throw new UsageError(`bad coordinator address ${JSON.stringify(options.coordinator)}: ${(error as Error).message}`)
    }
    this.timeoutMs = options.timeoutMs ?? 10_000
  }

  /** Sets KEY to VALUE. */
  async put(key: string, value: string): Promise<void> {
    await this.call('put', [key, value, randomUUID()])
  }

  /** Appends VALUE to KEY (creating it); resolves with the new length. */
  async append(key: string, value: string): Promise<number> {
    return Number(await this.call('append', [key, value, randomUUID()]))
  }

  /** The value of KEY; rejects with NotFoundError (exit 4) when it is missing. */
  async get(key: string): Promise<string> {
    return String(await this.call('get', [key]))
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy()
  }

  private async call(method: string, params: unknown[]): Promise<unknown> {
    const deadline = Date.now() + this.timeoutMs
    let backoff = 25
    let lastProblem = 'no attempt finished'
    for (;;) {
      const remaining = deadline - Date.now()
      if (remaining <= 0) {
        throw new TimeoutError(`replication ${method} gave up after ${this.timeoutMs} ms: ${lastProblem}`)
      }
      try {
        const master = await this.findMaster(remaining)
        if (master) return await callRpc(master, method, params, {timeoutMs: Math.min(remaining, CALL_TIMEOUT_MS), agent: this.agent})
        lastProblem = 'the coordinator names no master yet'
      } catch (error) {
        if (error instanceof RpcFault) {
          if (error.is('ErrNoKey')) throw new NotFoundError(`no such key: ${JSON.stringify(params[0])}`, 'file', {backendCode: 'ErrNoKey'})
          if (!error.is('ErrWrongServer') && !error.is('ErrUnavailable')) {
            throw new OperationFailedError(`replication ${method} failed: ${error.faultString}`)
          }
        }
        if (error instanceof OperationFailedError) throw error
        lastProblem = (error as Error).message
        this.master = ''
      }
      await sleep(Math.max(0, Math.min(backoff, deadline - Date.now())))
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
    }
  }

  /** The cached master, or the coordinator's answer; "" when there is none yet. */
  private async findMaster(remaining: number): Promise<string> {
    if (this.master) return this.master
    const name = await callRpc(this.coordinator, 'master', [], {timeoutMs: Math.min(remaining, CALL_TIMEOUT_MS), agent: this.agent})
    if (typeof name !== 'string') throw new OperationFailedError(`the coordinator's master() answered ${JSON.stringify(name)}`)
    if (name && !URL.canParse(name)) throw new OperationFailedError(`the master's name ${JSON.stringify(name)} is not a URL a client can reach`)
    this.master = name
    return name
  }
}
