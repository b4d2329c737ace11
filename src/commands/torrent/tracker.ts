import {Flags} from '@oclif/core'

import {mapFsError} from '../../backends/fs-errors.js'
import {OperationFailedError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {untilSignal} from '../../cli/signals.js'

export default class TorrentTracker extends BaseCommand<typeof TorrentTracker> {
  static summary = 'Run a BitTorrent tracker (HTTP and UDP) with a torrent pool.'
  static description = `Answers announces and scrapes over HTTP (GET /announce, GET /scrape; compact and dictionary replies) and over UDP (BEP 15) on the same port number. Peers silent for twice --interval are dropped. The pool: PUT /torrents with a .torrent body registers it, GET /torrents[?name=NAME] lists the pool as JSON, GET /torrents/<infohash>.torrent returns the file. With --data-dir the pool and the completion counters survive a restart. Prints "tracker http://HOST:PORT/announce" first; logs to stderr; stops cleanly on SIGINT/SIGTERM.`

  static examples = [
    '<%= config.bin %> <%= command.id %> --port 6969 --data-dir ./tracker',
    '<%= config.bin %> <%= command.id %> --host 0.0.0.0 --port 0 --interval 60',
  ]

  static enableJsonFlag = false

  static flags = {
    host: Flags.string({description: 'Address to listen on (TCP and UDP).', default: '127.0.0.1'}),
    port: Flags.integer({char: 'p', description: 'Port for HTTP and UDP (0 picks a free one).', default: 6969, min: 0, max: 65535}),
    interval: Flags.integer({description: 'Seconds between announces asked of clients.', default: 30, min: 1, max: 86_400}),
    'data-dir': Flags.string({description: 'Folder for the pool and counters (default: memory only).'}),
  }

  async run(): Promise<void> {
    const {flags} = this
    const {TrackerServer} = await import('../../torrent/index.js')
    const tracker = new TrackerServer({
      host: flags.host,
      port: flags.port,
      interval: flags.interval,
      dataDir: flags['data-dir'],
      log: (line) => this.info(line),
      verbose: flags.verbose,
    })
    await tracker.start().catch((error: NodeJS.ErrnoException) => {
      if (error.syscall === 'listen' || error.syscall === 'bind') {
        throw new OperationFailedError(`cannot listen on ${flags.host}:${flags.port}: ${error.code === 'EADDRINUSE' ? 'address in use' : error.message}`, {
          backendCode: error.code,
        })
      }
      throw mapFsError(error, `cannot use --data-dir ${flags['data-dir']}`, 'dir')
    })
    const stopping = untilSignal()
    this.log(`tracker ${tracker.announceUrl}`)
    this.log(`tracker ${tracker.udpUrl}`)
    if (!flags['data-dir']) this.info('no --data-dir: the pool and counters are kept in memory only')
    await stopping
    await tracker.stop()
    this.info('stopped')
  }
}
