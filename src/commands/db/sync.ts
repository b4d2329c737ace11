import {Flags} from '@oclif/core'

import {TemporaryError, UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {parseHostPort} from '../../kv/launch.js'

export default class DbSyncCommand extends BaseCommand<typeof DbSyncCommand> {
  static summary = 'Send the writes a --sync manual main is holding to its replicas.'
  static description = `Sends SYNCREPLICAS to the main: the writes it applied and acknowledged since the last sync go down the replication stream, and every replica sees them. Prints how many bytes of writes were synced (0 when nothing was pending, or when the main runs --sync auto).`

  static examples = ['<%= config.bin %> <%= command.id %> --main 127.0.0.1:6400', '<%= config.bin %> <%= command.id %> --main 127.0.0.1:6400 --json']

  static flags = {
    main: Flags.string({description: "The main's address, HOST:PORT.", required: true}),
  }

  async run(): Promise<{syncedBytes: number}> {
    let main
    try {
      main = parseHostPort(this.flags.main)
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    const {syncReplicas} = await import('../../db/index.js')
    let syncedBytes
    try {
      syncedBytes = await syncReplicas(main)
    } catch (error) {
      throw new TemporaryError(`cannot sync the main at ${this.flags.main}: ${(error as Error).message}`)
    }
    this.log(`synced ${syncedBytes} bytes of writes to the replicas`)
    return {syncedBytes}
  }
}
