import {Command, Flags} from '@oclif/core'
import path from 'node:path'

import {BACKEND_NAMES} from '../backends/remote-path.js'
import {ConfigFile} from '../config/config-file.js'
import {loadDotEnv, resolveSettings} from '../config/settings.js'
import {createProgress, type Progress} from '../ops/progress.js'
import {Session} from '../ops/session.js'
import {BaseCommand} from './base-command.js'

/** The config file's path: `~/.config/disk-client/config.json` (oclif's configDir). */
export function configFilePath(command: Command): string {
  return path.join(command.config.configDir, 'config.json')
}

/**
 * The base of the file commands (ls, stat, mkdir, rm, mv, cp, upload,
 * download, about): the backend flags of DESIGN.md §2, and a Session built
 * lazily from flags, environment, .env and the config file.
 */
export abstract class FileCommand<T extends typeof Command> extends BaseCommand<T> {
  static baseFlags = {
    ...BaseCommand.baseFlags,
    backend: Flags.string({
      description: 'Backend for paths without a prefix (else DISK_BACKEND, the config file, then the default).',
      options: [...BACKEND_NAMES],
      helpGroup: 'GLOBAL',
    }),
    retries: Flags.integer({description: 'Retries for temporary failures.', default: 5, min: 0, helpGroup: 'GLOBAL'}),
    token: Flags.string({description: 'Yandex.Disk OAuth token (else YANDEX_DISK_TOKEN, .env or the config file).', helpGroup: 'GLOBAL'}),
  }

  private sessionPromise?: Promise<Session>

  protected session(): Promise<Session> {
    this.sessionPromise ??= this.createSession()
    return this.sessionPromise
  }

  private async createSession(): Promise<Session> {
    loadDotEnv()
    const flags = this.flags as {backend?: string; token?: string; retries?: number; verbose?: boolean; router?: string}
    const settings = resolveSettings({
      flags: {backend: flags.backend, token: flags.token, retries: flags.retries, router: flags.router},
      env: process.env,
      config: await new ConfigFile(configFilePath(this)).read(),
      log: (message) => {
        if (flags.verbose) process.stderr.write(message + '\n')
      },
    })
    return new Session(settings)
  }

  /** A progress bar on a terminal's stderr, unless --quiet or --json. */
  protected progress(): Progress {
    return createProgress({quiet: Boolean(this.flags.quiet), json: this.jsonEnabled()})
  }

  public async finally(error: Error | undefined): Promise<void> {
    if (this.sessionPromise) await (await this.sessionPromise.catch(() => undefined))?.close()
    await super.finally(error)
  }
}
