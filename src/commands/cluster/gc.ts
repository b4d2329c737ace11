import {Flags} from '@oclif/core'

import {ClusterBackend} from '../../backends/cluster/index.js'
import {collectGarbage, type GcReport} from '../../backends/cluster/gc.js'
import {FileCommand} from '../../cli/file-command.js'
import {formatBytes} from '../../ops/progress.js'

export default class ClusterGc extends FileCommand<typeof ClusterGc> {
  static summary = 'Reclaim pieces that no file references.'
  static description =
    'Deletes pieces and manifests that no file and no upload in progress references (left by overwritten or removed files, and by interrupted uploads), and reports what it freed. Uses the router at --router or DISK_CLUSTER, else the embedded cluster.'

  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --router 127.0.0.1:7000 --dry-run --json']

  static flags = {
    router: Flags.string({description: 'Router address HOST:PORT (else DISK_CLUSTER; else the embedded cluster).'}),
    'dry-run': Flags.boolean({description: 'Only report what would be freed.'}),
    'stale-after-ms': Flags.integer({
      description: 'Treat an upload not heard from for this long as dead, and reclaim its pieces.',
      default: 600_000,
      min: 0,
    }),
    'settle-ms': Flags.integer({description: 'Wait after announcing the gc, so uploads in progress notice it.', default: 2500, min: 0}),
  }

  async run(): Promise<GcReport> {
    const session = await this.session()
    const adapter = await session.backend('cluster')
    if (!(adapter instanceof ClusterBackend)) throw new Error('the cluster backend is not available')
    const report = await collectGarbage(adapter.store, adapter.tree, {
      settleMs: this.flags['settle-ms'],
      dryRun: this.flags['dry-run'],
      staleAfterMs: this.flags['stale-after-ms'],
      log: session.settings.log,
    })
    const verb = this.flags['dry-run'] ? 'would free' : 'freed'
    if (!this.jsonEnabled()) {
      this.log(`${verb} ${report.piecesFreed} pieces (${formatBytes(report.bytesFreed)}) and ${report.manifestsFreed} manifests; kept ${report.piecesKept} pieces; dropped ${report.staleIntents} stale upload intents`)
    }

    return report
  }
}
