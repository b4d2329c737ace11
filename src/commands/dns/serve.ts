import {Flags} from '@oclif/core'

import {UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {ZoneParseError} from '../../dns/master-file.js'
import {DnsServer} from '../../dns/server.js'
import {formatEndpoint, parseEndpoint} from '../../dns/transport.js'
import {untilSignal} from '../../cli/signals.js'

export default class DnsServe extends BaseCommand<typeof DnsServe> {
  static summary = 'Run the DNS server (authoritative, with dynamic updates; optionally a caching resolver).'
  static description = `Answers over UDP and TCP on one port. Authoritative for each --zone master file (updates are journalled to FILE.jnl beside it). With --resolver, names outside those zones are resolved iteratively from the --root servers and cached; every server below the roots is asked on the first root's port. Prints one "listening" line per socket and logs to stderr; -v logs every query, every upstream query and the upstream query count. Stops cleanly on SIGINT/SIGTERM.`

  static examples = [
    '<%= config.bin %> <%= command.id %> --port 5353 --zone ./disk.test.zone --allow-update 127.0.0.1/32',
    '<%= config.bin %> <%= command.id %> --host 127.0.0.4 --port 5353 --resolver --root 127.0.0.1:5353',
  ]

  static flags = {
    port: Flags.integer({char: 'p', description: 'UDP and TCP port (0 picks a free one).', default: 5353, min: 0, max: 65535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    zone: Flags.string({description: 'Master file of a zone to serve (repeatable).', multiple: true}),
    resolver: Flags.boolean({description: 'Also resolve other names iteratively, with a cache.'}),
    root: Flags.string({description: 'Root server HOST:PORT for --resolver (repeatable).', multiple: true}),
    'allow-update': Flags.string({description: 'CIDR allowed to send dynamic updates (repeatable); none: all refused.', multiple: true}),
  }

  async run(): Promise<void> {
    const {flags} = this
    const roots = (flags.root ?? []).map((text) => {
      try {
        return parseEndpoint(text, 53)
      } catch (error) {
        throw new UsageError(`--root: ${(error as Error).message}`)
      }
    })
    if (flags.resolver && roots.length === 0) throw new UsageError('--resolver needs at least one --root HOST:PORT')
    if (!flags.resolver && roots.length > 0) throw new UsageError('--root only makes sense with --resolver')
    const log = (line: string): void => this.info(line)
    let server: DnsServer
    try {
      server = new DnsServer({
        host: flags.host,
        port: flags.port,
        zoneFiles: flags.zone ?? [],
        resolver: flags.resolver,
        roots,
        allowUpdate: flags['allow-update'] ?? [],
        log,
        verbose: flags.verbose,
      })
      await server.start()
    } catch (error) {
      if (error instanceof ZoneParseError || (error as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError((error as Error).message)
      if (error instanceof Error && /CIDR|zone|root/.test(error.message)) throw new UsageError(error.message)
      throw error
    }

    const stopping = untilSignal()
    const where = formatEndpoint(server.endpoint)
    this.log(`listening udp ${where}`)
    this.log(`listening tcp ${where}`)
    for (const zone of server.authority.zones()) this.info(`serving zone ${zone.origin === '.' ? '.' : zone.origin + '.'} (serial ${(zone.soa.data as {serial: number}).serial})`)

    await stopping
    const upstream = server.stats.upstream
    if (upstream) this.info(`upstream queries: ${upstream.upstreamQueries} (tcp ${upstream.upstreamTcp}), cache hits: ${upstream.cacheHits}`)
    await server.stop()
    this.info('stopped')
  }
}
