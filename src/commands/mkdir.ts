import {Args, Flags} from '@oclif/core'

import type {Entry} from '../backends/adapter.js'
import {FileCommand} from '../cli/file-command.js'
import {makeDirectory} from '../ops/files.js'

export default class Mkdir extends FileCommand<typeof Mkdir> {
  static summary = 'Create a directory.'
  static description =
    'Creates a remote directory. Without --parents, an existing path is a conflict (exit 6) and a missing parent is exit 3.'

  static examples = ['<%= config.bin %> <%= command.id %> /photos/2026 --parents', '<%= config.bin %> <%= command.id %> yandex:/backup']
  static args = {path: Args.string({description: 'Remote directory to create.', required: true})}
  static flags = {parents: Flags.boolean({char: 'p', description: 'Create missing parents; an existing directory is not an error.'})}

  async run(): Promise<Entry> {
    const entry = await makeDirectory(await (await this.session()).remote(this.args.path), this.flags.parents)
    this.info(`created ${entry.path}`)
    return entry
  }
}
