import {Args} from '@oclif/core'

import type {Entry} from '../backends/adapter.js'
import {FileCommand} from '../cli/file-command.js'
import {formatEntry} from '../cli/format.js'
import {statPath} from '../ops/files.js'

export default class Stat extends FileCommand<typeof Stat> {
  static summary = 'Describe one file or directory.'
  static description = 'Prints the type, size, modified time and hashes of one remote entry.'
  static examples = ['<%= config.bin %> <%= command.id %> /photos/cat.jpg', '<%= config.bin %> <%= command.id %> yandex:/a.txt --json']
  static args = {path: Args.string({description: 'Remote path.', required: true})}

  async run(): Promise<Entry> {
    const entry = await statPath(await (await this.session()).remote(this.args.path))
    if (!this.jsonEnabled()) this.log(formatEntry(entry))
    return entry
  }
}
