import {Args, Flags} from '@oclif/core'

import {NotFoundError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {configFilePath} from '../../cli/file-command.js'
import {assertConfigKey, CONFIG_KEYS, ConfigFile, redact} from '../../config/config-file.js'

export default class ConfigGet extends BaseCommand<typeof ConfigGet> {
  static summary = 'Print one value from the config file.'
  static description = 'Prints the value of KEY from the config file; tokens are redacted unless --reveal. Exit 4 if it is not set.'
  static examples = ['<%= config.bin %> <%= command.id %> backend', '<%= config.bin %> <%= command.id %> yandex.token --reveal']
  static args = {key: Args.string({description: 'Config key.', required: true})}
  static flags = {reveal: Flags.boolean({description: 'Show secrets in full.'})}

  async run(): Promise<{key: string; value: string}> {
    const key = assertConfigKey(this.args.key)
    const value = (await new ConfigFile(configFilePath(this)).read())[key]
    if (value === undefined) throw new NotFoundError(`${key} is not set in ${configFilePath(this)}`, 'file')
    const shown = CONFIG_KEYS[key].secret && !this.flags.reveal ? redact(value) : value
    if (!this.jsonEnabled()) this.log(shown)
    return {key, value: shown}
  }
}
