import {Flags} from '@oclif/core'

import {TemporaryError, UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {formatHostPort, parseHostPort} from '../../kv/launch.js'
import {untilSignal} from '../../cli/signals.js'
import {KvServer} from '../../kv/server.js'

export default class ClusterServer extends BaseCommand<typeof ClusterServer> {
  static summary = 'Run one numbered key-value storage server (LevelDB behind RESP).'
  static description = `Stores its share of the keys in LevelDB under --data-dir (an acknowledged write is in LevelDB's log, so it survives a SIGKILL of the server; with --fsync periodic, the default, the log and piece files are fsync'd in the background once a second and on shutdown, as Redis's appendfsync everysec and Cassandra's periodic commit log do; with --fsync always, every batch before it is acknowledged), announces its number and address to the router, and sends it a heartbeat every second over reliable UDP to the router's port. Prints its listening address; logs to stderr; stops cleanly on SIGINT/SIGTERM.`

  static examples = [
    '<%= config.bin %> <%= command.id %> --router 127.0.0.1:7000 --number 0 --port 7001 --data-dir ./cluster/server0',
    '<%= config.bin %> <%= command.id %> --router 127.0.0.1:7000 --number 1 --port 7002 --data-dir ./cluster/server1 --fsync always',
    '<%= config.bin %> <%= command.id %> --router 10.0.0.1:7000 --number 1 --host 0.0.0.0 --port 7002 --advertise 10.0.0.2:7002 --data-dir /var/lib/kv1',
  ]

  static flags = {
    router: Flags.string({description: "The router's address, HOST:PORT.", required: true}),
    number: Flags.integer({description: "This server's number, 0 … N-1.", required: true, min: 0}),
    port: Flags.integer({char: 'p', description: 'TCP port (0 picks a free one).', default: 0, min: 0, max: 65535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    advertise: Flags.string({description: 'Address announced to the router, HOST:PORT (default: --host and the bound port).'}),
    'data-dir': Flags.string({description: 'LevelDB folder.', required: true}),
    fsync: Flags.string({
      description: 'always: fsync every write batch before acknowledging it (survives power loss, not only a killed process); periodic: fsync once a second and on shutdown.',
      options: ['always', 'periodic'],
      default: 'periodic',
    }),
    'sync-writes': Flags.boolean({description: 'The same as --fsync always (kept for old scripts).'}),
  }

  async run(): Promise<void> {
    const {flags} = this
    let router
    let advertise
    try {
      router = parseHostPort(flags.router)
      advertise = flags.advertise ? parseHostPort(flags.advertise) : undefined
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    const server = new KvServer({
      number: flags.number,
      host: flags.host,
      port: flags.port,
      dataDir: flags['data-dir'],
      router,
      advertise,
      syncWrites: flags['sync-writes'] || flags.fsync === 'always',
      log: (line) => this.info(line),
    })
    try {
      await server.start()
    } catch (error) {
      throw new TemporaryError(`cannot start server ${flags.number}: ${(error as Error).message}`, {cause: error})
    }
    const stopping = untilSignal()
    this.log(`listening tcp ${formatHostPort(server.address)}`)
    await stopping
    await server.stop()
    this.info('stopped')
  }
}
