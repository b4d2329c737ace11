import path from 'node:path'

import {Flags} from '@oclif/core'

import {TemporaryError, UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {startChild, stopChildren, type Child} from '../../kv/children.js'
import {untilSignal} from '../../cli/signals.js'

export default class ClusterStart extends BaseCommand<typeof ClusterStart> {
  static summary = 'Launch a router and N storage servers as child processes.'
  static description = `Starts \`cluster router\` on --port (data in DATA_DIR/router) and \`cluster server\` 0 … N-1 (data in DATA_DIR/server<i>, ports following the router's, or free ports with --port 0), prints each one's address, forwards their logs to stderr, and stops them all on SIGINT/SIGTERM.`

  static examples = ['<%= config.bin %> <%= command.id %> --servers 3 --replicas 2 --port 7000 --data-dir ./cluster']

  static flags = {
    servers: Flags.integer({description: 'Number of storage servers.', default: 3, min: 1, max: 64}),
    replicas: Flags.integer({description: 'Copies of each key.', default: 2, min: 1}),
    port: Flags.integer({char: 'p', description: "The router's port; servers take the next ones (0: all free ports).", default: 7000, min: 0, max: 65535}),
    host: Flags.string({description: 'Address everything listens on.', default: '127.0.0.1'}),
    'data-dir': Flags.string({description: 'Folder for the router and server data.', required: true}),
  }

  async run(): Promise<void> {
    const {flags} = this
    if (flags.replicas > flags.servers) throw new UsageError(`--replicas ${flags.replicas} is more than --servers ${flags.servers}`)
    const bin = path.join(this.config.root, 'bin', 'run.js')
    const dataDir = path.resolve(flags['data-dir'])
    const children: Child[] = []
    const stopping = untilSignal()
    try {
      const routerArgs = ['cluster', 'router', '--port', String(flags.port), '--host', flags.host, '--servers', String(flags.servers)]
      routerArgs.push('--replicas', String(flags.replicas), '--data-dir', path.join(dataDir, 'router'))
      const router = await startChild(bin, 'router', routerArgs)
      children.push(router)
      this.log(`router ${router.address}`)
      for (let i = 0; i < flags.servers; i++) {
        const port = flags.port === 0 ? 0 : flags.port + 1 + i
        const args = ['cluster', 'server', '--router', router.address, '--number', String(i), '--port', String(port), '--host', flags.host]
        args.push('--data-dir', path.join(dataDir, `server${i}`))
        const server = await startChild(bin, `server${i}`, args)
        children.push(server)
        this.log(`server${i} ${server.address}`)
      }
    } catch (error) {
      await stopChildren(children.map((child) => child.process))
      throw new TemporaryError(`cannot start the cluster: ${(error as Error).message}`, {cause: error})
    }
    for (const child of children) {
      child.process.once('exit', (code, signal) => this.info(`${child.name} exited (${code ?? signal})`))
    }
    await stopping
    await stopChildren(children.map((child) => child.process))
    this.info('stopped')
  }
}
