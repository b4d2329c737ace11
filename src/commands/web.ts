import {Flags} from '@oclif/core'

import {FileCommand} from '../cli/file-command.js'
import {untilSignal} from '../cli/signals.js'

const isLoopback = (host: string): boolean => /^127\./.test(host) || host === '::1' || host === 'localhost'

export default class Web extends FileCommand<typeof Web> {
  static summary = 'Serve the web console: files on every backend, uploads, downloads, the cluster live.'
  static description = `Prints "web console: http://HOST:PORT/?token=TOKEN" as its first line; opening that URL exchanges the token for a cookie. Screens: home (list, sort, new folder, rename or move, copy across backends, delete), upload (files and folders, with progress), download (a file, or a folder as a zip), cluster (servers up or down, live) and, with --tracker, the torrent pool. Every action shows the equivalent disk-client command. Listens on 127.0.0.1 unless --host says otherwise; logs to stderr; stops on SIGINT/SIGTERM.`

  static examples = [
    '<%= config.bin %> <%= command.id %> --port 8080',
    'DISK_CLUSTER=127.0.0.1:7000 <%= config.bin %> <%= command.id %> --port 0 --tracker http://127.0.0.1:6969/announce --no-open',
  ]

  static enableJsonFlag = false

  static flags = {
    router: Flags.string({description: "The cluster router's address, HOST:PORT (else DISK_CLUSTER; unset: the embedded cluster)."}),
    host: Flags.string({description: 'Address to listen on (anything but loopback is reachable by others).', default: '127.0.0.1'}),
    port: Flags.integer({char: 'p', description: 'Port (0 picks a free one).', default: 8080, min: 0, max: 65535}),
    tracker: Flags.string({description: 'A torrent tracker (http://HOST:PORT/announce) whose pool the Torrents screen shows.'}),
    'no-open': Flags.boolean({description: 'Do not open a browser (the console never opens one itself; open the printed URL).'}),
  }

  async run(): Promise<void> {
    const {flags} = this
    const {WebServer} = await import('../web/index.js')
    const server = new WebServer({
      session: await this.session(),
      host: flags.host,
      port: flags.port,
      tracker: flags.tracker,
      log: (line) => this.info(line),
    })
    const stopping = untilSignal()
    await server.start()
    this.log(`web console: ${server.url}`)
    if (!isLoopback(flags.host)) {
      process.stderr.write(`warning: listening on ${flags.host}: anyone who can reach it and learns the token can read and change your files\n`)
    }

    const signal = await stopping
    await server.stop()
    this.info(`stopped (${signal})`)
  }
}
