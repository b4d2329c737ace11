import {Args, Flags} from '@oclif/core'

import type {Entry} from '../backends/adapter.js'
import {FileCommand} from '../cli/file-command.js'
import {formatEntries} from '../cli/format.js'
import {listPath} from '../ops/files.js'

export default class Ls extends FileCommand<typeof Ls> {
  static summary = 'List a directory.'
  static description = 'Lists the entries of a remote directory (default /). If PATH is a file, lists that one file.'
  static examples = [
    '<%= config.bin %> <%= command.id %> /photos --long',
    '<%= config.bin %> <%= command.id %> yandex:/ --json',
  ]

  static args = {path: Args.string({description: 'Remote directory or file, e.g. /photos or yandex:/photos.', default: '/'})}
  static flags = {long: Flags.boolean({char: 'l', description: 'Show type, size, modified time and name.'})}

  async run(): Promise<Entry[]> {
    const session = await this.session()
    const entries = await listPath(await session.remote(this.args.path))
    if (!this.jsonEnabled() && entries.length > 0) this.log(formatEntries(entries, this.flags.long))
    return entries
  }
}
