import {Args, Command, Flags} from '@oclif/core'

import {cleanUpOnInterrupt} from '../base/index.js'
import {formatBytes} from '../ops/progress.js'
import type {Session, Target} from '../ops/session.js'
import {transfer, type TransferResult} from '../ops/transfer.js'
import {FileCommand} from './file-command.js'

/**
 * The base of cp, mv, upload and download: the same destination rules,
 * `--overwrite`, `--transfers`, retries and progress; the commands differ
 * only in where SOURCE and DESTINATION live.
 */
export abstract class TransferCommand<T extends typeof Command> extends FileCommand<T> {
  static flags = {
    overwrite: Flags.boolean({description: 'Replace existing destination files.'}),
    transfers: Flags.integer({description: 'Files moved in parallel.', default: 4, min: 1}),
  }

  static args = {
    source: Args.string({description: 'Source path.', required: true}),
    destination: Args.string({description: 'Destination path; an existing directory receives the source inside it.', required: true}),
  }

  protected abstract readonly mode: 'copy' | 'move'
  protected abstract readonly verb: string
  protected abstract endpoints(session: Session, source: string, destination: string): Promise<[Target, Target]>

  async run(): Promise<TransferResult> {
    cleanUpOnInterrupt()
    const session = await this.session()
    const args = this.args as {source: string; destination: string}
    const flags = this.flags as {overwrite: boolean; transfers: number; retries: number}
    const [src, dst] = await this.endpoints(session, args.source, args.destination)
    const progress = this.progress()
    try {
      const result = await transfer(src, dst, this.mode, {
        overwrite: flags.overwrite,
        transfers: flags.transfers,
        retries: flags.retries,
        retryBaseMs: session.settings.retryBaseMs,
        progress,
        log: session.settings.log,
        verb: ({cp: 'copy', mv: 'move'} as Record<string, string>)[this.id ?? ''] ?? this.id ?? this.mode,
      })
      progress.stop()
      const what = result.type === 'dir' && result.files !== null ? ` (${result.files} files, ${formatBytes(result.bytes ?? 0)})` : ''
      this.info(`${this.verb} ${result.source} to ${result.destination}${what}`)
      return result
    } finally {
      progress.stop()
    }
  }
}
