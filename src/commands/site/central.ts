import {Flags} from '@oclif/core'

import {UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {untilSignal} from '../../cli/signals.js'

export default class SiteCentral extends BaseCommand<typeof SiteCentral> {
  static summary = 'Run the central site server that polls and replicates the locals.'
  static description =
    'Polls every --local concurrently and independently: pull (local → central) by the CouchDB replication protocol with checkpoints, and push (central → local, the records that local owns) on POST /_push?local=NAME or by itself when a local comes back with a new identity. A local that fails is marked down and retried with capped exponential backoff. Answers SNTP on UDP at the HTTP port number and GET /time. Prints `listening http HOST:PORT` first, logs JSON lines to stderr (or --log), and stops on SIGINT/SIGTERM.'

  static examples = [
    '<%= config.bin %> <%= command.id %> --port 5984 --data-dir ./central --local north=http://127.0.0.1:5985 --local south=http://127.0.0.1:5986',
    '<%= config.bin %> <%= command.id %> --port 0 --data-dir ./central --local north=127.0.0.1:5985 --poll-ms 500 --longpoll',
  ]

  static enableJsonFlag = false
  static flags = {
    port: Flags.integer({char: 'p', description: 'Port of HTTP and SNTP (UDP) (0 picks a free one).', default: 0, min: 0, max: 65_535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    'data-dir': Flags.string({description: 'Directory of the LevelDB database.', required: true}),
    local: Flags.string({description: 'A local as NAME=URL; repeat for each.', multiple: true, default: []}),
    'poll-ms': Flags.integer({description: 'Milliseconds between polls of one local.', default: 5000, min: 10}),
    'max-backoff-ms': Flags.integer({description: 'The cap of the retry backoff for a local that is down.', default: 30_000, min: 10}),
    'clock-offset-ms': Flags.integer({description: 'Milliseconds added to the served clock (for tests).', default: 0}),
    'timeout-ms': Flags.integer({description: 'Per-request timeout towards a local.', default: 5000, min: 10}),
    longpoll: Flags.boolean({description: "Wait on each local's longpoll _changes feed between polls instead of sleeping."}),
    log: Flags.string({description: 'Append the JSON log lines to this file instead of stderr.'}),
  }

  async run(): Promise<void> {
    const {CentralServer, jsonLog, parseLocalSpec} = await import('../../site/index.js')
    const flags = this.flags
    let locals
    try {
      locals = flags.local.map((text) => parseLocalSpec(text))
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    const logger = jsonLog(flags.log)
    let server
    try {
      server = new CentralServer({
        host: flags.host,
        port: flags.port,
        dataDir: flags['data-dir'],
        locals,
        pollMs: flags['poll-ms'],
        maxBackoffMs: flags['max-backoff-ms'],
        clockOffsetMs: flags['clock-offset-ms'],
        timeoutMs: flags['timeout-ms'],
        longpoll: flags.longpoll,
        log: logger.log,
      })
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    // Listen for the signal before saying we listen: a caller may send it as soon as it reads the line.
    const stopped = untilSignal()
    const address = await server.start()
    this.log(`listening http ${address.address}:${address.port}`)
    this.log(`listening udp ${address.address}:${address.port}`)
    const signal = await stopped
    logger.log({event: 'stop', signal})
    await server.stop()
    await logger.close()
  }
}
