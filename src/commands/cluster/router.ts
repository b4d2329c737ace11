import {Flags} from '@oclif/core'

import {TemporaryError, UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {formatHostPort} from '../../kv/launch.js'
import {untilSignal} from '../../cli/signals.js'
import {KvRouter} from '../../kv/router.js'

export default class ClusterRouter extends BaseCommand<typeof ClusterRouter> {
  static summary = 'Run the key-value router (RESP on TCP, heartbeats on UDP, same port).'
  static description = `Clients speak RESP (redis-cli, redis-benchmark, any Redis library) to the router; it places every key on --replicas of the --servers numbered storage servers, keeps hints and a buffer for servers that are down (in its own LevelDB under --data-dir), repairs stale replicas on reads and by anti-entropy, and shows its view in INFO's "# Cluster" section. Prints one "listening" line per socket; logs to stderr; stops cleanly on SIGINT/SIGTERM.`

  static examples = ['<%= config.bin %> <%= command.id %> --port 7000 --servers 3 --replicas 2 --data-dir ./cluster/router']

  static flags = {
    port: Flags.integer({char: 'p', description: 'TCP port for clients and UDP port for heartbeats (0 picks a free one).', default: 7000, min: 0, max: 65535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    servers: Flags.integer({description: 'Number of storage servers, numbered 0 … N-1.', required: true, min: 1, max: 1024}),
    replicas: Flags.integer({description: 'Copies of each key.', default: 2, min: 1}),
    'data-dir': Flags.string({description: "The router's own data folder (membership, hints, buffer).", required: true}),
    'anti-entropy-ms': Flags.integer({description: 'Period of anti-entropy rounds (0 turns it off).', default: 10_000, min: 0}),
    'heartbeat-timeout-ms': Flags.integer({description: 'A server is down after this long without a heartbeat.', default: 3000, min: 100}),
  }

  async run(): Promise<void> {
    const {flags} = this
    if (flags.replicas > flags.servers) throw new UsageError(`--replicas ${flags.replicas} is more than --servers ${flags.servers}`)
    const router = new KvRouter({
      host: flags.host,
      port: flags.port,
      servers: flags.servers,
      replicas: flags.replicas,
      dataDir: flags['data-dir'],
      antiEntropyMs: flags['anti-entropy-ms'],
      heartbeatTimeoutMs: flags['heartbeat-timeout-ms'],
      log: (line) => this.info(line),
    })
    try {
      await router.start()
    } catch (error) {
      throw new TemporaryError(`cannot start the router: ${(error as Error).message}`, {cause: error})
    }
    const stopping = untilSignal()
    const where = formatHostPort(router.address)
    this.log(`listening tcp ${where}`)
    this.log(`listening udp ${where}`)
    await stopping
    await router.stop()
    this.info('stopped')
  }
}
