import {Flags} from '@oclif/core'
import os from 'node:os'
import path from 'node:path'

import {UsageError} from '../../base/index.js'
import {FileCommand} from '../../cli/file-command.js'
import {untilSignal} from '../../cli/signals.js'

const isLoopback = (host: string): boolean => /^127\./.test(host) || host === '::1' || host === 'localhost'

export default class ServeWebdav extends FileCommand<typeof ServeWebdav> {
  static summary = 'Serve a backend over WebDAV (class 1 and 2: properties and locks) for any WebDAV client.'
  static description = `Prints "webdav: http://HOST:PORT/" as its first line. Serves the backend chosen by --backend (else DISK_BACKEND, the config file, then the cluster) at the root of the URL: PROPFIND, PROPPATCH, MKCOL, GET/HEAD with Range, streamed PUT, DELETE, COPY/MOVE (server-side where the backend can), LOCK/UNLOCK. Dead properties are kept in a sidecar file (--props, default ~/.local/share/disk-client/webdav/props-BACKEND.json); locks live in memory. Basic auth when --user and --pass are given. Listens on 127.0.0.1 unless --host says otherwise; logs to stderr; stops on SIGINT/SIGTERM.`

  static examples = [
    '<%= config.bin %> <%= command.id %> -p 8081',
    '<%= config.bin %> <%= command.id %> --backend local --user me --pass secret -p 0',
    'RCLONE_CONFIG_D_TYPE=webdav RCLONE_CONFIG_D_URL=http://127.0.0.1:8081/ rclone ls d:',
  ]

  static enableJsonFlag = false

  static flags = {
    router: Flags.string({description: "The cluster router's address, HOST:PORT (else DISK_CLUSTER; unset: the embedded cluster)."}),
    host: Flags.string({description: 'Address to listen on (anything but loopback is reachable by others).', default: '127.0.0.1'}),
    port: Flags.integer({char: 'p', description: 'Port (0 picks a free one).', default: 8081, min: 0, max: 65535}),
    user: Flags.string({description: 'Basic-auth user name (with --pass).'}),
    pass: Flags.string({description: 'Basic-auth password (with --user).'}),
    props: Flags.string({description: 'The dead-property store, a JSON file.'}),
  }

  async run(): Promise<void> {
    const {flags} = this
    if ((flags.user === undefined) !== (flags.pass === undefined)) throw new UsageError('--user and --pass go together')
    const session = await this.session()
    const backend = session.settings.defaultBackend
    const adapter = await session.backend(backend)
    const {WebDavServer} = await import('../../serve/index.js')
    const server = new WebDavServer({
      adapter,
      host: flags.host,
      port: flags.port,
      user: flags.user,
      pass: flags.pass,
      propsFile: path.resolve(flags.props ?? path.join(os.homedir(), '.local/share/disk-client/webdav', `props-${backend}.json`)),
      log: (line) => this.info(line),
    })
    const stopping = untilSignal()
    await server.start()
    this.log(`webdav: ${server.url}`)
    if (!isLoopback(flags.host) && flags.user === undefined) {
      process.stderr.write(`warning: listening on ${flags.host} without --user/--pass: anyone who can reach it can read and change your files\n`)
    }

    const signal = await stopping
    await server.stop()
    this.info(`stopped (${signal})`)
  }
}
