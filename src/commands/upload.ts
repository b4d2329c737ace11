import {Args, Flags} from '@oclif/core'

import {UsageError} from '../base/index.js'
import {fetchUrl} from '../ops/features.js'
import type {Session, Target} from '../ops/session.js'
import type {TransferResult} from '../ops/transfer.js'
import {TransferCommand} from '../cli/transfer-command.js'

export default class Upload extends TransferCommand<typeof Upload> {
  static summary = 'Upload a local file or directory tree, or have the Disk fetch a URL.'
  static description =
    'Uploads LOCAL to REMOTE, streaming, --transfers files at a time, verified by hash where the backend gives one. With --from-url URL REMOTE the backend downloads the URL by itself (Yandex.Disk), polled to the end; elsewhere exit 2.'

  static examples = [
    '<%= config.bin %> <%= command.id %> ./README.md /docs/README.md',
    '<%= config.bin %> <%= command.id %> ./photos yandex:/backup --transfers 8',
    '<%= config.bin %> <%= command.id %> --from-url https://example.com/file.iso yandex:/downloads/file.iso',
  ]

  static flags = {
    ...TransferCommand.flags,
    'from-url': Flags.string({description: 'Have the backend fetch this URL into REMOTE (the one argument).'}),
  }

  // Both optional at parse time (--from-url takes one); run() says what is missing.
  static args = {
    source: Args.string({description: 'Local file or directory (with --from-url: the remote destination).'}),
    destination: Args.string({description: 'Remote destination; an existing directory receives the source inside it.'}),
  } as unknown as (typeof TransferCommand)['args']

  protected readonly mode = 'copy'
  protected readonly verb = 'uploaded'

  async run(): Promise<TransferResult> {
    const args = this.args as {source?: string; destination?: string}
    const url = (this.flags as {'from-url'?: string})['from-url']
    if (url !== undefined) {
      if (args.source === undefined || args.destination !== undefined) throw new UsageError('usage: upload --from-url URL REMOTE')
      const target = await (await this.session()).remote(args.source)
      await fetchUrl(url, target)
      this.info(`fetched ${url} to ${target.path}`)
      return {source: url, destination: target.path, type: 'file', files: 1, bytes: null, serverSide: true}
    }

    if (args.source === undefined || args.destination === undefined) throw new UsageError('usage: upload LOCAL REMOTE')
    return super.run()
  }

  protected async endpoints(session: Session, source: string, destination: string): Promise<[Target, Target]> {
    return [session.local(source), await session.remote(destination)]
  }
}
