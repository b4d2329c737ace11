import type {Session, Target} from '../ops/session.js'
import {TransferCommand} from '../cli/transfer-command.js'

export default class Cp extends TransferCommand<typeof Cp> {
  static summary = 'Copy a file or directory.'
  static description =
    'Copies server-side on one backend, and streams across backends (e.g. yandex:/a.txt to local:/a.txt). Directories are copied whole.'

  static examples = [
    '<%= config.bin %> <%= command.id %> /report.pdf /archive/',
    '<%= config.bin %> <%= command.id %> yandex:/photos local:/photos --transfers 8',
  ]

  protected readonly mode: 'copy' | 'move' = 'copy'
  protected readonly verb: string = 'copied'

  protected async endpoints(session: Session, source: string, destination: string): Promise<[Target, Target]> {
    return [await session.remote(source), await session.remote(destination)]
  }
}
