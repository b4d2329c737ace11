import {BaseCommand} from '../cli/base-command.js'
import {configFilePath} from '../cli/file-command.js'
import {ConfigFile} from '../config/config-file.js'

export default class Logout extends BaseCommand<typeof Logout> {
  static summary = 'Remove the stored Yandex.Disk token.'
  static description = 'Removes yandex.token from the config file. YANDEX_DISK_TOKEN in the environment is not touched.'
  static examples = ['<%= config.bin %> <%= command.id %>']

  async run(): Promise<{removed: boolean}> {
    const file = new ConfigFile(configFilePath(this))
    const had = (await file.read())['yandex.token'] !== undefined
    if (had) await file.set('yandex.token', undefined)
    this.info(had ? 'logged out; token removed from the config file' : 'no token was stored')
    return {removed: had}
  }
}
