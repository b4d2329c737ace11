import {Args, Flags} from '@oclif/core'

import {FileCommand} from '../cli/file-command.js'
import {drawTree, type TreeNode, treeOf} from '../ops/inspect.js'

export default class Tree extends FileCommand<typeof Tree> {
  static summary = 'Show a directory tree.'
  static description = 'Draws the entries below a remote directory as a tree; --level 1 shows the direct children only.'
  static examples = ['<%= config.bin %> <%= command.id %> /photos', '<%= config.bin %> <%= command.id %> yandex:/ --level 2']
  static args = {path: Args.string({description: 'Remote directory.', default: '/'})}
  static flags = {level: Flags.integer({char: 'L', description: 'Levels to show (1: direct children only).', min: 1})}

  async run(): Promise<TreeNode[]> {
    const target = await (await this.session()).remote(this.args.path)
    const nodes = await treeOf(target, this.flags.level)
    if (!this.jsonEnabled()) this.log(drawTree(this.args.path, nodes))
    return nodes
  }
}
