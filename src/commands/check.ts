import {Args, Flags} from '@oclif/core'

import {FileCommand} from '../cli/file-command.js'
import {checkTrees, type Differences, resolveSide} from '../ops/sync.js'

export default class Check extends FileCommand<typeof Check> {
  static summary = 'Compare two trees.'
  static description = `Compares SRC and DST by size and hash (content is hashed where a backend reports none). Prints "+ PATH" for what only SRC has, "- PATH" for what only DST has, "* PATH" for what differs, relative to the two roots. Exits 0 when identical, 1 otherwise.`

  static examples = [
    '<%= config.bin %> <%= command.id %> ./photos yandex:/backup/photos',
    '<%= config.bin %> <%= command.id %> cluster:/docs file:/srv/docs --one-way',
  ]

  static args = {
    source: Args.string({description: 'First tree.', required: true}),
    destination: Args.string({description: 'Second tree.', required: true}),
  }

  static flags = {
    'one-way': Flags.boolean({description: 'Only report what SRC has that DST lacks or holds differently.'}),
    checkers: Flags.integer({description: 'Directories listed and files hashed in parallel.', default: 8, min: 1}),
  }

  async run(): Promise<Differences & {identical: boolean}> {
    const session = await this.session()
    const [src, dst] = [await resolveSide(session, this.args.source), await resolveSide(session, this.args.destination)]
    const result = await checkTrees(src, dst, {oneWay: this.flags['one-way'], concurrency: this.flags.checkers})
    const identical = result.onlySrc.length + result.onlyDst.length + result.differ.length === 0
    if (!this.jsonEnabled()) {
      const lines = [
        ...result.onlySrc.map((p) => `+ ${p}`),
        ...result.onlyDst.map((p) => `- ${p}`),
        ...result.differ.map((p) => `* ${p}`),
      ]
      if (lines.length > 0) this.log(lines.join('\n'))
      this.info(identical ? `identical (${result.same} files)` : `${lines.length} differences, ${result.same} files the same`)
    }

    if (!identical) process.exitCode = 1
    return {...result, identical}
  }
}
