import {Flags} from '@oclif/core'

import {TemporaryError, UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {parseHostPort} from '../../kv/launch.js'
import type {ReadStats} from '../../db/index.js'

export default class DbStatusCommand extends BaseCommand<typeof DbStatusCommand> {
  static summary = "Show a proxy's read statistics: reads per replica and on the main, replica state and lag."
  static description = `Asks the proxy for INFO reads and prints a table (NODE, ADDRESS, READS, STATE, LAG BYTES), or with --json {main: {addr, reads}, replicas: [{addr, reads, state, lagBytes}]}. Exits 5 when the proxy cannot be reached.`

  static examples = ['<%= config.bin %> <%= command.id %> --proxy 127.0.0.1:6380', '<%= config.bin %> <%= command.id %> --proxy 127.0.0.1:6380 --json']

  static flags = {
    proxy: Flags.string({description: "The proxy's address, HOST:PORT.", required: true}),
  }

  async run(): Promise<ReadStats> {
    let proxy
    try {
      proxy = parseHostPort(this.flags.proxy)
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    const {fetchReads} = await import('../../db/index.js')
    let stats: ReadStats
    try {
      stats = await fetchReads(proxy)
    } catch (error) {
      throw new TemporaryError(`cannot reach the proxy at ${this.flags.proxy}: ${(error as Error).message}`)
    }
    const rows = [['NODE', 'ADDRESS', 'READS', 'STATE', 'LAG BYTES'], ['main', stats.main.addr, String(stats.main.reads), '-', '-']]
    stats.replicas.forEach((replica, i) => rows.push([`replica${i}`, replica.addr, String(replica.reads), replica.state, replica.lagBytes < 0 ? '-' : String(replica.lagBytes)]))
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)))
    for (const row of rows) this.log(row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd())
    return stats
  }
}
