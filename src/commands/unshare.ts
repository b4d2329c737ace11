import {Args} from '@oclif/core'

import {FileCommand} from '../cli/file-command.js'
import {unshare} from '../ops/features.js'

export default class Unshare extends FileCommand<typeof Unshare> {
  static summary = 'Revoke the public link of a file or directory.'
  static description = 'Where the backend has public links (Yandex.Disk: unpublish); elsewhere exit 2.'
  static examples = ['<%= config.bin %> <%= command.id %> yandex:/photos/cat.jpg']
  static args = {path: Args.string({description: 'Remote path.', required: true})}

  async run(): Promise<{path: string}> {
    const target = await (await this.session()).remote(this.args.path)
    await unshare(target)
    this.info(`unshared ${target.path}`)
    return {path: target.path}
  }
}
