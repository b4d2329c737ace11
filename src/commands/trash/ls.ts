import type {TrashItem} from '../../backends/adapter.js'
import {FileCommand} from '../../cli/file-command.js'
import {trashOf} from '../../ops/features.js'

export default class TrashLs extends FileCommand<typeof TrashLs> {
  static summary = 'List the trash.'
  static description = 'Lists what is in the trash, by original path, where the backend has a trash (Yandex.Disk); elsewhere exit 2.'
  static examples = ['<%= config.bin %> <%= command.id %> --backend yandex', '<%= config.bin %> <%= command.id %> --backend yandex --json']

  async run(): Promise<TrashItem[]> {
    const session = await this.session()
    const trash = trashOf(await session.backend(session.settings.defaultBackend))
    const items: TrashItem[] = []
    for await (const item of trash.list()) items.push(item)
    if (!this.jsonEnabled() && items.length > 0) {
      this.log(items.map((item) => `${(item.deleted ?? '-').replace('T', ' ').slice(0, 19)}  ${item.path}${item.type === 'dir' ? '/' : ''}  (${item.id})`).join('\n'))
    }

    return items
  }
}
