import {Args, Flags} from '@oclif/core'

import {FileCommand} from '../cli/file-command.js'
import {cleanUpOnInterrupt} from '../base/index.js'
import {formatBytes} from '../ops/progress.js'
import {resolveSide, type SyncResult, syncTrees} from '../ops/sync.js'

export default class Sync extends FileCommand<typeof Sync> {
  static summary = 'Make DST identical to SRC.'
  static description = `Copies what is new or changed in SRC to DST (by size and a hash both sides have, else size and modification time; --checksum hashes where needed), then deletes from DST what SRC lacks. SRC is never changed. Either side is a backend path (yandex:/a, cluster:/a, /a) or a folder of this machine (./rel, ../rel, file:/abs).`

  static examples = [
    '<%= config.bin %> <%= command.id %> ./photos yandex:/backup/photos',
    '<%= config.bin %> <%= command.id %> cluster:/docs file:/srv/docs --dry-run',
    '<%= config.bin %> <%= command.id %> ./site cluster:/site --checksum --transfers 8 --json',
  ]

  static args = {
    source: Args.string({description: 'What to copy from; never changed.', required: true}),
    destination: Args.string({description: 'What to make identical to SOURCE.', required: true}),
  }

  static flags = {
    'dry-run': Flags.boolean({char: 'n', description: 'Print the plan and change nothing.'}),
    checksum: Flags.boolean({char: 'c', description: 'Compare by hash, hashing content where a side has none, instead of modification time.'}),
    transfers: Flags.integer({description: 'Files moved in parallel.', default: 4, min: 1}),
    checkers: Flags.integer({description: 'Directories listed and links prepared in parallel.', default: 8, min: 1}),
  }

  async run(): Promise<SyncResult> {
    cleanUpOnInterrupt()
    const session = await this.session()
    const [src, dst] = [await resolveSide(session, this.args.source), await resolveSide(session, this.args.destination)]
    const dryRun = this.flags['dry-run']
    const progress = dryRun ? undefined : this.progress()
    try {
      const result = await syncTrees(src, dst, {
        dryRun,
        checksum: this.flags.checksum,
        transfers: this.flags.transfers,
        checkers: this.flags.checkers,
        retries: (this.flags as {retries?: number}).retries,
        retryBaseMs: session.settings.retryBaseMs,
        progress,
        log: session.settings.log,
        onAction: (action) => {
          if (dryRun && !this.jsonEnabled()) this.log(`${action.kind} ${action.path}`)
          else if (this.flags.verbose) process.stderr.write(`${action.kind} ${action.path}\n`)
        },
      })
      progress?.stop()
      this.info(
        `${dryRun ? 'would copy' : 'copied'} ${result.copied} files (${formatBytes(result.bytes)}), ${dryRun ? 'would delete' : 'deleted'} ${result.deleted}, ${result.unchanged} unchanged`,
      )
      return result
    } finally {
      progress?.stop()
    }
  }
}
