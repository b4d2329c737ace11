import {Flags} from '@oclif/core'

import {TemporaryError, UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {formatHostPort, parseHostPort} from '../../kv/launch.js'
import {untilSignal} from '../../cli/signals.js'

export default class DbReplicaCommand extends BaseCommand<typeof DbReplicaCommand> {
  static summary = 'Run a read-only replica of a Redis-protocol main (ours or a real redis-server).'
  static description = `Follows the main over the Redis replication protocol: a full resync loads its RDB snapshot (disk or diskless transfers, LZF-compressed strings; keys of other types are skipped and counted), then applies its stream of writes, SELECT included. Sends REPLCONF ACK every second; after a broken link it asks for a partial resync (PSYNC replid offset+1). Serves GET MGET EXISTS KEYS DBSIZE INFO; writes get READONLY. Keeps its data in LevelDB under --data-dir. Prints its listening address; logs to stderr; stops cleanly on SIGINT/SIGTERM.`

  static examples = [
    '<%= config.bin %> <%= command.id %> --port 6401 --main 127.0.0.1:6400 --data-dir ./db/replica1',
    '<%= config.bin %> <%= command.id %> --port 6402 --main 127.0.0.1:6379 --data-dir ./db/replica-of-redis',
  ]

  static flags = {
    port: Flags.integer({char: 'p', description: 'TCP port (0 picks a free one).', default: 0, min: 0, max: 65535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    main: Flags.string({description: "The main's address, HOST:PORT.", required: true}),
    'data-dir': Flags.string({description: 'LevelDB folder.', required: true}),
  }

  async run(): Promise<void> {
    const {flags} = this
    let main
    try {
      main = parseHostPort(flags.main)
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    const {DbReplica} = await import('../../db/index.js')
    const server = new DbReplica({host: flags.host, port: flags.port, dataDir: flags['data-dir'], main, log: (line) => this.info(line)})
    try {
      await server.start()
    } catch (error) {
      throw new TemporaryError(`cannot start the replica: ${(error as Error).message}`, {cause: error})
    }
    const stopping = untilSignal()
    this.log(`listening tcp ${formatHostPort(server.address)}`)
    await stopping
    await server.stop()
    this.info('stopped')
  }
}
