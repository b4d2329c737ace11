import {Flags} from '@oclif/core'

import {UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {untilSignal} from '../../cli/signals.js'

export default class SiteLocal extends BaseCommand<typeof SiteLocal> {
  static summary = 'Run a local site server that generates records.'
  static description =
    'Serves the `records` database (a CouchDB-protocol subset: PouchDB replicates with it) and GET /_status, generates a record {_id: "NAME:<n>", owner, at, value} every --generate-ms stamped with the time synchronised to the central by SNTP. Prints `listening http HOST:PORT` first, logs JSON lines to stderr (or --log), and stops on SIGINT/SIGTERM.'

  static examples = [
    '<%= config.bin %> <%= command.id %> --name north --port 5985 --data-dir ./north --central http://127.0.0.1:5984',
    '<%= config.bin %> <%= command.id %> --name south --port 0 --data-dir ./south --central http://127.0.0.1:5984 --generate-ms 200',
  ]

  static enableJsonFlag = false
  static flags = {
    name: Flags.string({description: 'This local\'s name: the owner of its records.', required: true}),
    port: Flags.integer({char: 'p', description: 'Port to listen on (0 picks a free one).', default: 0, min: 0, max: 65_535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    'data-dir': Flags.string({description: 'Directory of the LevelDB database.', required: true}),
    central: Flags.string({description: "The central's URL; its UDP port of the same number answers SNTP.", required: true}),
    'generate-ms': Flags.integer({description: 'Milliseconds between generated records (0: none).', default: 1000, min: 0}),
    'sync-ms': Flags.integer({description: 'Milliseconds between clock synchronisations.', default: 10_000, min: 100}),
    log: Flags.string({description: 'Append the JSON log lines to this file instead of stderr.'}),
  }

  async run(): Promise<void> {
    const {LocalServer, jsonLog} = await import('../../site/index.js')
    const flags = this.flags
    try {
      new URL(flags.central)
    } catch {
      throw new UsageError(`--central ${flags.central} is not a URL`)
    }
    const logger = jsonLog(flags.log)
    let server
    try {
      server = new LocalServer({name: flags.name, host: flags.host, port: flags.port, dataDir: flags['data-dir'], central: flags.central, generateMs: flags['generate-ms'], syncMs: flags['sync-ms'], log: logger.log})
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    // Listen for the signal before saying we listen: a caller may send it as soon as it reads the line.
    const stopped = untilSignal()
    const address = await server.start()
    this.log(`listening http ${address.address}:${address.port}`)
    const signal = await stopped
    logger.log({event: 'stop', local: flags.name, signal})
    await server.stop()
    await logger.close()
  }
}
