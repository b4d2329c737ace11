import type {Session, Target} from '../ops/session.js'
import {TransferCommand} from '../cli/transfer-command.js'

export default class Upload extends TransferCommand<typeof Upload> {
  static summary = 'Upload a local file or directory tree.'
  static description =
    'Uploads LOCAL to REMOTE, streaming, --transfers files at a time, verified by hash where the backend gives one.'

  static examples = [
    '<%= config.bin %> <%= command.id %> ./README.md /docs/README.md',
    '<%= config.bin %> <%= command.id %> ./photos yandex:/backup --transfers 8',
  ]

  protected readonly mode = 'copy'
  protected readonly verb = 'uploaded'

  protected async endpoints(session: Session, source: string, destination: string): Promise<[Target, Target]> {
    return [session.local(source), await session.remote(destination)]
  }
}
