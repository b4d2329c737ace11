import {Args, Flags} from '@oclif/core'

import {FileCommand} from '../cli/file-command.js'
import {catFile} from '../ops/inspect.js'

export default class Cat extends FileCommand<typeof Cat> {
  static summary = 'Write a file to stdout.'
  static description =
    'Writes the content of a remote file to stdout, or only --count bytes from --offset (a ranged read where the backend has one).'

  static examples = [
    '<%= config.bin %> <%= command.id %> /notes.txt',
    '<%= config.bin %> <%= command.id %> yandex:/big.iso --offset 1048576 --count 512 > part.bin',
  ]

  static enableJsonFlag = false
  static args = {path: Args.string({description: 'Remote file.', required: true})}
  static flags = {
    offset: Flags.integer({description: 'First byte to write (0-based).', default: 0, min: 0}),
    count: Flags.integer({description: 'Bytes to write (default: to the end).', min: 0}),
  }

  async run(): Promise<void> {
    const target = await (await this.session()).remote(this.args.path)
    await catFile(target, {offset: this.flags.offset, count: this.flags.count}, process.stdout)
  }
}
