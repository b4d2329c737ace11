import {Args} from '@oclif/core'

import {FileCommand} from '../cli/file-command.js'
import {share} from '../ops/features.js'

export default class Share extends FileCommand<typeof Share> {
  static summary = 'Publish a file or directory and print its public link.'
  static description = 'Where the backend has public links (Yandex.Disk: publish); elsewhere exit 2.'
  static examples = ['<%= config.bin %> <%= command.id %> yandex:/photos/cat.jpg', '<%= config.bin %> <%= command.id %> yandex:/album --json']
  static args = {path: Args.string({description: 'Remote path.', required: true})}

  async run(): Promise<{path: string; url: string}> {
    const target = await (await this.session()).remote(this.args.path)
    const url = await share(target)
    if (!this.jsonEnabled()) this.log(url)
    return {path: target.path, url}
  }
}
