import {BaseCommand} from '../../cli/base-command.js'
import {configFilePath} from '../../cli/file-command.js'
import {CONFIG_KEYS, type ConfigKey, ConfigFile, redact} from '../../config/config-file.js'

export default class ConfigList extends BaseCommand<typeof ConfigList> {
  static summary = 'List the config file.'
  static description =
    'Prints every key set in the config file, tokens redacted, and notes where an environment variable overrides it.'

  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<Record<string, string>> {
    const values = await new ConfigFile(configFilePath(this)).read()
    const shown: Record<string, string> = {}
    for (const [key, value] of Object.entries(values) as Array<[ConfigKey, string]>) {
      shown[key] = CONFIG_KEYS[key].secret ? redact(value) : value
      const override = process.env[CONFIG_KEYS[key].env] ? `  (overridden by ${CONFIG_KEYS[key].env})` : ''
      if (!this.jsonEnabled()) this.log(`${key}=${shown[key]}${override}`)
    }

    if (Object.keys(values).length === 0) this.info(`nothing set in ${configFilePath(this)}`)
    return shown
  }
}
