import {Flags} from '@oclif/core'

import {TemporaryError, UsageError} from '../../base/index.js'
import {ClusterBackend, type EmbeddedStore} from '../../backends/cluster/index.js'
import {FileCommand} from '../../cli/file-command.js'
import {parseHostPort} from '../../kv/launch.js'
import {fetchStatus, type ClusterStatus} from '../../kv/status.js'

export default class ClusterStatusCommand extends FileCommand<typeof ClusterStatusCommand> {
  static summary = "Show the router's view of its servers."
  static description = `Asks the router (--router, or DISK_CLUSTER) for INFO's "# Cluster" section and each server that is up for its key count, and prints a table: number, address, state, last heartbeat, keys, hints pending. Exits 5 when the router cannot be reached. With no router (no --router, DISK_CLUSTER or config), shows the embedded cluster: one server, the process holding the data dir (this one, or the one it attaches to).`

  static examples = ['<%= config.bin %> <%= command.id %> --router 127.0.0.1:7000', 'DISK_CLUSTER=127.0.0.1:7000 <%= config.bin %> <%= command.id %> --json', '<%= config.bin %> <%= command.id %>']

  static flags = {
    router: Flags.string({description: "The router's address, HOST:PORT (default: DISK_CLUSTER)."}),
  }

  async run(): Promise<ClusterStatus> {
    const session = await this.session()
    const text = session.settings.cluster
    if (!text) {
      const adapter = await session.backend('cluster')
      if (!(adapter instanceof ClusterBackend)) throw new Error('the cluster backend is not available')
      return this.print(await (adapter.store as EmbeddedStore).status())
    }
    let router
    try {
      router = parseHostPort(text)
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    let status: ClusterStatus
    try {
      status = await fetchStatus(router)
    } catch (error) {
      throw new TemporaryError(`cannot reach the router at ${text}: ${(error as Error).message}`)
    }
    return this.print(status)
  }

  private print(status: ClusterStatus): ClusterStatus {
    if (!this.jsonEnabled()) {
      this.log(`servers ${status.servers_up}/${status.servers} up, replicas ${status.replicas}, hints pending ${status.hints_pending}, buffered writes ${status.buffered_writes}`)
      const rows = [['SERVER', 'ADDRESS', 'STATE', 'HEARTBEAT', 'KEYS', 'HINTS']]
      for (const m of status.members) {
        rows.push([String(m.number), m.addr || '-', m.state, m.last_heartbeat_ms < 0 ? '-' : `${m.last_heartbeat_ms} ms ago`, m.keys === null ? '-' : String(m.keys), String(m.hints)])
      }
      const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)))
      for (const row of rows) this.log(row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd())
    }
    return status
  }
}
