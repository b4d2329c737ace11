import {Args, Flags} from '@oclif/core'

import {FileCommand} from '../cli/file-command.js'
import {removePath} from '../ops/files.js'

export default class Rm extends FileCommand<typeof Rm> {
  static summary = 'Remove a file or directory.'
  static description =
    'Removes a remote file, or a directory with --recursive. On Yandex.Disk it goes to the trash unless --permanently.'

  static examples = [
    '<%= config.bin %> <%= command.id %> /old.txt',
    '<%= config.bin %> <%= command.id %> yandex:/old-photos --recursive --permanently',
  ]

  static args = {path: Args.string({description: 'Remote path to remove.', required: true})}
  static flags = {
    recursive: Flags.boolean({char: 'r', description: 'Remove a directory and everything in it.'}),
    permanently: Flags.boolean({description: 'Skip the trash where the backend has one.'}),
  }

  async run(): Promise<{removed: string}> {
    const target = await (await this.session()).remote(this.args.path)
    await removePath(target, {recursive: this.flags.recursive, permanently: this.flags.permanently})
    this.info(`removed ${target.path}`)
    return {removed: target.path}
  }
}
