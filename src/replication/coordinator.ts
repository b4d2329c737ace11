import type {AddressInfo} from 'node:net'

import {checkParams, invalidParams} from './faults.js'
import {httpUrl} from './rpc-client.js'
import {RpcServer} from './rpc-server.js'
import {type View, ViewService} from './view.js'

export interface CoordinatorOptions {
  /** Address to bind; default 127.0.0.1. */
  host?: string
  /** Port to bind; 0 (the default) picks a free one. */
  port?: number
  /** Missed ticks after which a server is dead; default 5. */
  deadPings?: number
  /** Milliseconds per tick; 0 turns the timer off so only `tick()` calls advance time. Default 100. */
  tickMs?: number
  /** Event log (view changes); default: nowhere. */
  log?: (line: string) => void
}

/**
 * The view-service coordinator: the `ViewService` state machine behind
 * XML-RPC methods `ping(viewnum, name)`, `master()`, `view()` and `tick()`.
 */
export class Coordinator {
  private readonly service: ViewService
  private readonly rpc: RpcServer
  private readonly log: (line: string) => void
  private timer?: NodeJS.Timeout

  constructor(private readonly options: CoordinatorOptions = {}) {
    this.service = new ViewService({deadPings: options.deadPings ?? 5})
    this.log = options.log ?? (() => {})
    this.rpc = new RpcServer({
      host: options.host,
      port: options.port,
      log: this.log,
      methods: {
        ping: (params) => {
          const [viewnum, name] = checkParams('ping', params, ['int', 'string'])
          if (name === '') throw invalidParams('ping: the server name must not be empty')
          return this.observe(() => this.service.ping(viewnum, name))
        },
        master: (params) => {
          checkParams('master', params, [])
          return this.service.master()
        },
        view: (params) => {
          checkParams('view', params, [])
          return this.service.view()
        },
        tick: (params) => {
          checkParams('tick', params, [])
          return this.tick()
        },
      },
    })
  }

  async start(): Promise<AddressInfo> {
    const address = await this.rpc.start()
    const tickMs = this.options.tickMs ?? 100
    if (tickMs > 0) this.timer = setInterval(() => this.tick(), tickMs)
    return address
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.rpc.stop()
  }

  /** The coordinator's URL, once started. */
  url(): string {
    return httpUrl(this.rpc.address())
  }

  tick(): View {
    return this.observe(() => this.service.tick())
  }

  view(): View {
    return this.service.view()
  }

  /** Runs a state change and logs the view if it moved. */
  private observe(step: () => View): View {
    const before = this.service.view().number
    const view = step()
    if (view.number !== before) this.log(`view ${view.number}: master=${view.master || '-'} backup=${view.backup || '-'}`)
    return view
  }
}
