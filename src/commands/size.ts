import {Args} from '@oclif/core'

import {FileCommand} from '../cli/file-command.js'
import {sizeOf} from '../ops/inspect.js'
import {formatBytes} from '../ops/progress.js'

export default class Size extends FileCommand<typeof Size> {
  static summary = 'Count the files and bytes below a path.'
  static description = 'Walks a remote directory (or one file) and prints how many files and bytes it holds.'
  static examples = ['<%= config.bin %> <%= command.id %> /photos', '<%= config.bin %> <%= command.id %> yandex:/ --json']
  static args = {path: Args.string({description: 'Remote directory or file.', default: '/'})}

  async run(): Promise<{files: number; bytes: number}> {
    const result = await sizeOf(await (await this.session()).remote(this.args.path))
    if (!this.jsonEnabled()) this.log(`files: ${result.files}\nbytes: ${result.bytes} (${formatBytes(result.bytes)})`)
    return result
  }
}
