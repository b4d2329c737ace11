import {Args, Flags} from '@oclif/core'

import {FileCommand} from '../../cli/file-command.js'
import {trashOf} from '../../ops/features.js'

export default class TrashRestore extends FileCommand<typeof TrashRestore> {
  static summary = 'Restore an item from the trash.'
  static description =
    'Restores PATH (the original path as `trash ls` shows it, or the trash item name) to where it was, or to --to; where the backend has a trash (Yandex.Disk), elsewhere exit 2.'

  static examples = [
    '<%= config.bin %> <%= command.id %> yandex:/old/report.pdf',
    '<%= config.bin %> <%= command.id %> yandex:/old/report.pdf --to /restored/report.pdf',
  ]

  static args = {path: Args.string({description: 'Original path (or trash name) of the item.', required: true})}
  static flags = {
    to: Flags.string({description: 'Where to put it instead of its original path.'}),
    overwrite: Flags.boolean({description: 'Replace what exists at the destination.'}),
  }

  async run(): Promise<{restored: string; to: string}> {
    const session = await this.session()
    const target = this.args.path.startsWith('trash:')
      ? {adapter: await session.backend(session.settings.defaultBackend), path: this.args.path}
      : await session.remote(this.args.path)
    const to = this.flags.to === undefined ? undefined : (await session.remote(this.flags.to)).path
    const restoredTo = await trashOf(target.adapter).restore(target.path, {to, overwrite: this.flags.overwrite})
    this.info(`restored ${target.path} to ${restoredTo}`)
    return {restored: target.path, to: restoredTo}
  }
}
