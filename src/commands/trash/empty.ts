import {Args} from '@oclif/core'

import {FileCommand} from '../../cli/file-command.js'
import {trashOf} from '../../ops/features.js'

export default class TrashEmpty extends FileCommand<typeof TrashEmpty> {
  static summary = 'Empty the trash, or delete one item from it for good.'
  static description = 'Without PATH the whole trash is emptied; where the backend has a trash (Yandex.Disk), elsewhere exit 2.'
  static examples = ['<%= config.bin %> <%= command.id %> --backend yandex', '<%= config.bin %> <%= command.id %> yandex:/old/report.pdf']
  static args = {path: Args.string({description: 'Original path (or trash name) of one item.'})}

  async run(): Promise<{emptied: string}> {
    const session = await this.session()
    const input = this.args.path
    const target =
      input === undefined || input.startsWith('trash:')
        ? {adapter: await session.backend(session.settings.defaultBackend), path: input}
        : await session.remote(input)
    await trashOf(target.adapter).empty(target.path)
    this.info(target.path === undefined ? 'emptied the trash' : `deleted ${target.path} from the trash`)
    return {emptied: target.path ?? 'all'}
  }
}
