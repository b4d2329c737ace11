import {Args, Flags} from '@oclif/core'
import fs from 'node:fs/promises'
import nodePath from 'node:path'

import {NotFoundError} from '../../base/index.js'
import {parseRemotePath} from '../../backends/remote-path.js'
import {FileCommand} from '../../cli/file-command.js'
import type {SourceLocation} from '../../torrent/index.js'

export default class TorrentSeed extends FileCommand<typeof TorrentSeed> {
  static summary = 'Serve a torrent\'s data to its peers.'
  static description = `Checks PATH against every piece hash of TORRENT, then serves it: PATH is the file (single-file torrent) or the torrent's top folder, on this machine or on any backend (cluster:/a, read by ranges through the backend). Announces "started" to every tracker of the torrent (and --tracker), again every interval, "stopped" on SIGINT/SIGTERM; also connects out to the peers the trackers list (some clients never dial peers on loopback addresses). --publish registers the .torrent in our tracker's pool (PUT /torrents). First stdout line: "seeding HOST:PORT INFOHASH NAME"; logs go to stderr.`

  static examples = [
    '<%= config.bin %> <%= command.id %> ./report.torrent --data ./report.pdf --publish',
    '<%= config.bin %> <%= command.id %> ./report.torrent --data cluster:/docs/report.pdf --host 127.0.0.2 -p 6881',
  ]

  static args = {
    torrent: Args.string({description: 'The .torrent file, or its http(s) URL (e.g. in a tracker\'s pool).', required: true}),
  }

  static flags = {
    data: Flags.string({description: 'The content: a local file or folder, or a backend path (cluster:/a).', required: true}),
    host: Flags.string({description: 'Address to listen on and connect from.', default: '127.0.0.1'}),
    port: Flags.integer({char: 'p', description: 'Port for peers (0 picks a free one).', default: 6881, min: 0, max: 65535}),
    tracker: Flags.string({description: 'Tracker announce URL besides the torrent\'s own (repeatable).', multiple: true}),
    publish: Flags.boolean({description: 'Register the torrent in the pool of each http tracker (PUT /torrents).'}),
    peer: Flags.string({description: 'A peer HOST:PORT to connect to besides the trackers\' (repeatable).', multiple: true}),
    'upload-limit': Flags.integer({description: 'Upload limit in bytes per second over all peers (0: none).', default: 0, min: 0}),
    'max-announce-interval': Flags.integer({description: 'Announce at least this often (seconds), whatever the tracker\'s interval.', min: 1}),
  }

  async run(): Promise<{infoHash: string; name: string; address: string; uploaded: number}> {
    const {flags, args} = this
    const torrent = await import('../../torrent/index.js')
    const file = /^https?:\/\//i.test(args.torrent)
      ? await torrent.fetchTorrentFile(args.torrent)
      : await fs.readFile(args.torrent).catch((error: NodeJS.ErrnoException) => {
          throw new NotFoundError(`${args.torrent}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`, 'file')
        })
    const meta = torrent.parseTorrent(file)
    let data: SourceLocation
    let shown = flags.data
    if (/^[a-z]+:/.test(flags.data)) {
      const parsed = parseRemotePath(flags.data)
      const remote = await (await this.session()).remote(flags.data)
      data = {adapter: remote.adapter, path: remote.path}
      shown = `${parsed.backend}:${remote.path}`
    } else data = {path: nodePath.resolve(flags.data)}
    const trackers = [...new Set([...meta.announce, ...(flags.tracker ?? [])])]
    const log = (line: string): void => this.info(line)
    // Listen for the signals before anything is announced, so a stop at any moment announces "stopped".
    let stopRequested = false
    const checking = new AbortController()
    const stopped = new Promise<void>((resolve) => {
      const stop = (): void => {
        stopRequested = true
        checking.abort()
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        resolve()
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
    this.info(`checking ${shown} against ${meta.pieces.length} piece hashes`)
    const started = await torrent.startSeed({
      meta,
      data,
      shown,
      host: flags.host,
      port: flags.port,
      trackers,
      peers: flags.peer,
      log: (line) => (flags.verbose ? log(line) : undefined),
      verbose: flags.verbose,
      maxAnnounceMs: flags['max-announce-interval'] ? flags['max-announce-interval'] * 1000 : undefined,
      uploadLimit: flags['upload-limit'],
      signal: checking.signal,
    }).catch((error: unknown) => {
      if (!stopRequested) throw error
      return null
    })
    if (!started) {
      this.info('stopped before serving')
      return {infoHash: meta.infoHashHex, name: meta.name, address: '', uploaded: 0}
    }
    const {swarm, source} = started
    this.log(`seeding ${swarm.address} ${meta.infoHashHex} ${meta.name}`)
    try {
      if (flags.publish && !stopRequested) {
        for (const url of trackers.filter((t) => /^https?:/.test(t))) {
          try {
            const published = await torrent.publishTorrent(url, file)
            this.info(`published ${published.name} (${published.infoHash}) to ${url}`)
          } catch (error) {
            this.warn(`cannot publish to ${url}: ${(error as Error).message}`)
          }
        }
      }
      await stopped
    } finally {
      await swarm.stop()
      await source.close()
    }
    this.info(`stopped; uploaded ${swarm.uploaded} bytes`)
    return {infoHash: meta.infoHashHex, name: meta.name, address: swarm.address, uploaded: swarm.uploaded}
  }
}
