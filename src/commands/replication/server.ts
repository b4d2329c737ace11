import {Flags} from '@oclif/core'

import {UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {normalizeUrl} from '../../replication/rpc-client.js'
import {ReplicaServer} from '../../replication/server.js'
import {untilSignal} from '../../cli/signals.js'

export default class ReplicationServer extends BaseCommand<typeof ReplicationServer> {
  static summary = 'Run a primary/backup key-value server.'
  static description =
    'Serves XML-RPC on / and /RPC2 with put, append, get, put_backup, tick and status, and pings the coordinator every tick under --name (default http://HOST:PORT/). Prints one `listening http HOST:PORT` line, logs role changes to stderr, and stops on SIGINT/SIGTERM.'

  static examples = [
    '<%= config.bin %> <%= command.id %> --coordinator http://127.0.0.1:7000/ --port 7001',
    '<%= config.bin %> <%= command.id %> --coordinator 127.0.0.1:7000 --port 7002 --tick-ms 50',
  ]

  static enableJsonFlag = false
  static flags = {
    coordinator: Flags.string({description: 'The coordinator, as a URL or HOST:PORT.', required: true}),
    port: Flags.integer({description: 'Port to listen on (0 picks a free one).', default: 0, min: 0, max: 65_535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    name: Flags.string({description: 'Name to ping the coordinator with; clients call it, so keep it a URL. Default http://HOST:PORT/.'}),
    'tick-ms': Flags.integer({description: 'Milliseconds between pings; 0 means only tick() calls ping.', default: 100, min: 0}),
  }

  async run(): Promise<void> {
    const {coordinator, port, host, name, 'tick-ms': tickMs} = this.flags
    if (name === '') throw new UsageError('--name must not be empty')
    let url: string
    try {
      url = normalizeUrl(coordinator)
    } catch (error) {
      throw new UsageError(`--coordinator: ${(error as Error).message}`)
    }
    const server = new ReplicaServer({coordinator: url, port, host, name, tickMs, log: (line) => this.info(line)})
    const address = await server.start()
    const stopping = untilSignal()
    this.log(`listening http ${address.address}:${address.port}`)
    this.info(`name ${server.name}, coordinator ${url}`)
    const signal = await stopping
    this.info(`${signal}: stopping`)
    await server.stop()
  }
}
