import type {IncomingMessage, ServerResponse} from 'node:http'

import {describeError} from '../cli/report-error.js'
import type {ClusterStatus} from '../kv/status.js'

/**
 * One poller of the router's status, shared by every open event stream
 * (`GET /api/cluster/events`); it runs only while someone listens.
 */
export class ClusterFeed {
  private readonly clients = new Set<ServerResponse>()
  private timer?: NodeJS.Timeout
  /** Bumped each time polling starts or stops, so an answer from an older round schedules nothing. */
  private round = 0
  private polling = false
  private last = ''

  constructor(
    private readonly fetch: () => Promise<ClusterStatus>,
    private readonly intervalMs = 1000,
  ) {}

  subscribe(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive'})
    res.write('retry: 2000\n\n')
    if (this.last) res.write(this.last)
    this.clients.add(res)
    req.socket.setTimeout(0)
    res.on('close', () => {
      this.clients.delete(res)
      if (this.clients.size === 0) this.stopPolling()
    })
    if (!this.polling) {
      this.polling = true
      this.poll(++this.round)
    }
  }

  private stopPolling(): void {
    this.polling = false
    this.round++
    clearTimeout(this.timer)
  }

  /** Asks the router now, then again `intervalMs` after each answer, while this round lasts. */
  private poll(round: number): void {
    void this.fetch()
      .then(
        (status) => `event: status\ndata: ${JSON.stringify(status)}\n\n`,
        (error: unknown) => `event: failure\ndata: ${JSON.stringify({error: describeError(error)})}\n\n`,
      )
      .then((message) => {
        if (round !== this.round) return
        this.last = message
        for (const client of this.clients) client.write(message)
        this.timer = setTimeout(() => this.poll(round), this.intervalMs)
      })
  }

  close(): void {
    this.stopPolling()
    for (const client of this.clients) client.end()
    this.clients.clear()
  }
}
