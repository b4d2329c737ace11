import {Flags} from '@oclif/core'

import {TemporaryError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {formatHostPort} from '../../kv/launch.js'
import {untilSignal} from '../../cli/signals.js'

export default class DbMainCommand extends BaseCommand<typeof DbMainCommand> {
  static summary = 'Run the main database: a RESP server over LevelDB and a Redis replication master.'
  static description = `Answers PING SELECT GET SET DEL EXISTS INCR APPEND MGET MSET KEYS DBSIZE INFO in databases 0-15, and serves replicas over the Redis replication protocol (PSYNC with a full resync from an RDB snapshot or a partial one from the backlog, legacy SYNC, WAIT), so a real redis-server can be its replica (redis-server --replicaof HOST PORT). With --sync manual, writes reach the replicas only on SYNCREPLICAS (disk-client db sync). An acknowledged write is in LevelDB's log, so it survives a SIGKILL. Prints its listening address; logs to stderr; stops cleanly on SIGINT/SIGTERM.`

  static examples = [
    '<%= config.bin %> <%= command.id %> --port 6400 --data-dir ./db/main',
    '<%= config.bin %> <%= command.id %> --port 6400 --data-dir ./db/main --sync manual --backlog 16777216',
  ]

  static flags = {
    port: Flags.integer({char: 'p', description: 'TCP port (0 picks a free one).', default: 0, min: 0, max: 65535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    'data-dir': Flags.string({description: 'LevelDB folder.', required: true}),
    sync: Flags.string({description: 'auto: writes reach replicas at once; manual: on SYNCREPLICAS / db sync.', options: ['auto', 'manual'], default: 'auto'}),
    backlog: Flags.integer({description: 'Replication backlog size in bytes (partial resyncs within it).', default: 1024 * 1024, min: 16 * 1024}),
  }

  async run(): Promise<void> {
    const {flags} = this
    const {DbMain} = await import('../../db/index.js')
    const server = new DbMain({
      host: flags.host,
      port: flags.port,
      dataDir: flags['data-dir'],
      sync: flags.sync as 'auto' | 'manual',
      backlogBytes: flags.backlog,
      log: (line) => this.info(line),
    })
    try {
      await server.start()
    } catch (error) {
      throw new TemporaryError(`cannot start the main database: ${(error as Error).message}`, {cause: error})
    }
    const stopping = untilSignal()
    this.log(`listening tcp ${formatHostPort(server.address)}`)
    await stopping
    await server.stop()
    this.info('stopped')
  }
}
