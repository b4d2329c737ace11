import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {configFilePath} from '../../cli/file-command.js'
import {assertConfigKey, CONFIG_KEYS, ConfigFile, redact} from '../../config/config-file.js'

export default class ConfigSet extends BaseCommand<typeof ConfigSet> {
  static summary = 'Set a value in the config file.'
  static description = `Writes KEY=VALUE to ~/.config/disk-client/config.json (mode 0600). An empty VALUE removes the key. Keys: ${Object.keys(CONFIG_KEYS).join(', ')}.`
  static examples = [
    '<%= config.bin %> <%= command.id %> yandex.token y0_AgAAAA...',
    '<%= config.bin %> <%= command.id %> backend yandex',
  ]

  static args = {
    key: Args.string({description: 'Config key.', required: true}),
    value: Args.string({description: 'New value; empty to remove.', required: true}),
  }

  async run(): Promise<{key: string; value: string | null}> {
    const key = assertConfigKey(this.args.key)
    const value = this.args.value === '' ? undefined : this.args.value
    await new ConfigFile(configFilePath(this)).set(key, value)
    const shown = value === undefined ? null : CONFIG_KEYS[key].secret ? redact(value) : value
    this.info(value === undefined ? `removed ${key}` : `set ${key} = ${shown}`)
    return {key, value: shown}
  }
}
