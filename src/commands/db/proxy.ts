import {Flags} from '@oclif/core'

import {TemporaryError, UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {formatHostPort, parseHostPort} from '../../kv/launch.js'
import {untilSignal} from '../../cli/signals.js'

export default class DbProxyCommand extends BaseCommand<typeof DbProxyCommand> {
  static summary = 'Run the database front: writes to the main, reads round-robin over the replicas.'
  static description = `One RESP endpoint for applications. Writes and every other command go to the main; GET MGET EXISTS KEYS DBSIZE go round-robin to the replicas that answer and whose lag (the main's replication offset minus the replica's last acknowledged offset, from the main's INFO replication) is within --max-lag-bytes, else to the main. A read that fails on a replica is retried on the main. With --read-your-writes a connection that wrote reads from the main until the replicas have acknowledged its write. INFO reads gives the read statistics (see disk-client db status); CONFIG RESETSTAT zeroes them. Prints its listening address; logs to stderr; stops cleanly on SIGINT/SIGTERM.`

  static examples = [
    '<%= config.bin %> <%= command.id %> --port 6380 --main 127.0.0.1:6400 --replicas 127.0.0.1:6401,127.0.0.1:6402',
    '<%= config.bin %> <%= command.id %> --port 6380 --main 127.0.0.1:6400 --replicas 127.0.0.1:6401 --max-lag-bytes 65536 --read-your-writes',
  ]

  static flags = {
    port: Flags.integer({char: 'p', description: 'TCP port (0 picks a free one).', default: 0, min: 0, max: 65535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    main: Flags.string({description: "The main's address, HOST:PORT.", required: true}),
    replicas: Flags.string({description: 'The replicas, HOST:PORT[,HOST:PORT…], numbered from 0 in this order.', required: true}),
    'max-lag-bytes': Flags.integer({description: 'A replica further behind the main than this reads nothing.', default: 1024 * 1024, min: 0}),
    'read-your-writes': Flags.boolean({description: 'After a write, the connection reads from the main until the replicas have it.'}),
  }

  async run(): Promise<void> {
    const {flags} = this
    let main
    let replicas
    try {
      main = parseHostPort(flags.main)
      replicas = flags.replicas.split(',').filter((text) => text.trim() !== '').map((text) => parseHostPort(text))
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    if (replicas.length === 0) throw new UsageError('--replicas needs at least one HOST:PORT')
    const {DbProxy} = await import('../../db/index.js')
    const proxy = new DbProxy({host: flags.host, port: flags.port, main, replicas, maxLagBytes: flags['max-lag-bytes'], readYourWrites: flags['read-your-writes'], log: (line) => this.info(line)})
    try {
      await proxy.start()
    } catch (error) {
      throw new TemporaryError(`cannot start the proxy: ${(error as Error).message}`, {cause: error})
    }
    const stopping = untilSignal()
    this.log(`listening tcp ${formatHostPort(proxy.address)}`)
    await stopping
    await proxy.stop()
    this.info('stopped')
  }
}
