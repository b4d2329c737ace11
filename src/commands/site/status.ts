import {Flags} from '@oclif/core'

import {TemporaryError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'

interface CentralStatus {
  records: number
  updateSeq: number
  locals: Array<{name: string; url: string; state: string; lastPull: string | null; lastPush: string | null; lag: number | null; pulled: number; pushed: number; errors: number; clockOffsetMs: number | null}>
}

export default class SiteStatus extends BaseCommand<typeof SiteStatus> {
  static summary = "Show the central's view of its locals."
  static description = "Asks the central's GET /_status and prints one row per local: name, state, last pull and push, lag, documents pulled and pushed, errors, clock offset. Exits 5 when the central cannot be reached."

  static examples = ['<%= config.bin %> <%= command.id %> --central http://127.0.0.1:5984', '<%= config.bin %> <%= command.id %> --central http://127.0.0.1:5984 --json']

  static flags = {
    central: Flags.string({description: "The central's URL.", required: true}),
  }

  async run(): Promise<CentralStatus> {
    const base = /^https?:\/\//.test(this.flags.central) ? this.flags.central : `http://${this.flags.central}`
    let status: CentralStatus
    try {
      const response = await fetch(new URL('/_status', base), {signal: AbortSignal.timeout(5000)})
      if (!response.ok) throw new Error(`HTTP ${response.status}`)
      status = (await response.json()) as CentralStatus
    } catch (error) {
      throw new TemporaryError(`cannot reach the central at ${base}: ${(error as Error).message}`)
    }
    if (!this.jsonEnabled()) {
      this.log(`central: ${status.records} records, update_seq ${status.updateSeq}`)
      const rows = [['LOCAL', 'STATE', 'LAST PULL', 'LAST PUSH', 'LAG', 'PULLED', 'PUSHED', 'ERRORS', 'CLOCK MS']]
      for (const l of status.locals) {
        rows.push([l.name, l.state, l.lastPull ?? '-', l.lastPush ?? '-', l.lag === null ? '-' : String(l.lag), String(l.pulled), String(l.pushed), String(l.errors), l.clockOffsetMs === null ? '-' : String(l.clockOffsetMs)])
      }
      const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)))
      for (const row of rows) this.log(row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd())
    }
    return status
  }
}
