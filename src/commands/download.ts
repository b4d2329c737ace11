import type {Session, Target} from '../ops/session.js'
import {TransferCommand} from '../cli/transfer-command.js'

export default class Download extends TransferCommand<typeof Download> {
  static summary = 'Download a remote file or directory tree.'
  static description =
    'Downloads REMOTE to LOCAL. Each file is written to a temporary file beside its target and renamed only once complete and verified.'

  static examples = [
    '<%= config.bin %> <%= command.id %> /docs/README.md ./README.md',
    '<%= config.bin %> <%= command.id %> yandex:/photos ./photos --overwrite',
  ]

  protected readonly mode = 'copy'
  protected readonly verb = 'downloaded'

  protected async endpoints(session: Session, source: string, destination: string): Promise<[Target, Target]> {
    return [await session.remote(source), session.local(destination)]
  }
}
