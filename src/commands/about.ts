import type {About as AboutInfo} from '../backends/adapter.js'
import {UsageError} from '../base/index.js'
import {FileCommand} from '../cli/file-command.js'
import {formatAbout} from '../cli/format.js'

export default class About extends FileCommand<typeof About> {
  static summary = 'Show quota and usage.'
  static description = 'Prints total, used, free and trash bytes of the chosen backend (null where it cannot tell).'
  static examples = ['<%= config.bin %> <%= command.id %> --backend yandex', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<AboutInfo> {
    const session = await this.session()
    const adapter = await session.backend(session.settings.defaultBackend)
    if (!adapter.about) throw new UsageError(`the ${adapter.name} backend cannot report its quota`)
    const about = await adapter.about()
    if (!this.jsonEnabled()) this.log(formatAbout(about))
    return about
  }
}
