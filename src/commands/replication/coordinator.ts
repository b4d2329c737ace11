import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {Coordinator} from '../../replication/coordinator.js'
import {untilSignal} from '../../cli/signals.js'

export default class ReplicationCoordinator extends BaseCommand<typeof ReplicationCoordinator> {
  static summary = 'Run the view-service coordinator.'
  static description =
    'Serves XML-RPC on / and /RPC2 with ping(viewnum, name), master(), view() and tick(). Prints one `listening http HOST:PORT` line, logs view changes to stderr, and stops on SIGINT/SIGTERM.'

  static examples = [
    '<%= config.bin %> <%= command.id %> --port 7000',
    '<%= config.bin %> <%= command.id %> --port 7000 --dead-pings 5 --tick-ms 0',
  ]

  static enableJsonFlag = false
  static flags = {
    port: Flags.integer({description: 'Port to listen on (0 picks a free one).', default: 0, min: 0, max: 65_535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    'dead-pings': Flags.integer({description: 'Missed ticks after which a server is dead.', default: 5, min: 1}),
    'tick-ms': Flags.integer({description: 'Milliseconds per tick; 0 means time advances only through tick() calls.', default: 100, min: 0}),
  }

  async run(): Promise<void> {
    const {port, host, 'dead-pings': deadPings, 'tick-ms': tickMs} = this.flags
    const coordinator = new Coordinator({port, host, deadPings, tickMs, log: (line) => this.info(line)})
    const address = await coordinator.start()
    const stopping = untilSignal()
    this.log(`listening http ${address.address}:${address.port}`)
    const signal = await stopping
    this.info(`${signal}: stopping`)
    await coordinator.stop()
  }
}
