import Cp from './cp.js'

/** `mv` is `cp` that removes the source: the same endpoints, flags and destination rules. */
export default class Mv extends Cp {
  static summary = 'Move or rename a file or directory.'
  static description =
    'Moves server-side on one backend, and streams across backends (copy, then remove the source once everything arrived). Directories are moved whole.'

  static examples = [
    '<%= config.bin %> <%= command.id %> /file1.txt /file2.txt',
    '<%= config.bin %> <%= command.id %> yandex:/photos local:/photos --overwrite',
  ]

  protected override readonly mode = 'move'
  protected override readonly verb = 'moved'
}
