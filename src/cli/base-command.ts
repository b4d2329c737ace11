import {Command, Flags, Interfaces} from '@oclif/core'

import {reportError} from './report-error.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * The base of every disk-client command: `--json`, `-q`, `-v`, and one place
 * that turns typed errors into exit codes and one-line messages.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static enableJsonFlag = true

  static baseFlags = {
    quiet: Flags.boolean({char: 'q', description: 'Print nothing but results and errors.', helpGroup: 'GLOBAL'}),
    verbose: Flags.boolean({char: 'v', description: 'Log more, and show stack traces on errors.', helpGroup: 'GLOBAL'}),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>

  public async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
  }

  /** Logs to stderr unless --quiet, so stdout carries only data. */
  protected info(message: string): void {
    if (!this.flags?.quiet && !this.jsonEnabled()) process.stderr.write(message + '\n')
  }

  public async catch(error: Error & {exitCode?: number}): Promise<void> {
    reportError(error, {
      json: this.jsonEnabled(),
      verbose: Boolean(this.flags?.verbose) || this.argv.includes('-v') || this.argv.includes('--verbose'),
    })
  }
}
