import {Args, Flags} from '@oclif/core'
import nodePath from 'node:path'

import {parseRemotePath} from '../../backends/remote-path.js'
import {FileCommand} from '../../cli/file-command.js'
import {formatBytes} from '../../ops/progress.js'
import type {GetResult, TargetLocation} from '../../torrent/index.js'

export default class TorrentGet extends FileCommand<typeof TorrentGet> {
  static summary = 'Download a torrent from its peers.'
  static description = `SOURCE is a .torrent file or http URL, a magnet (the metadata is fetched from peers, BEP 9), or a name looked up in the pool of --tracker. The content goes into the folder DEST (DEST/NAME), a local folder or any backend folder (cluster:/dir). Pieces are fetched as 16 KiB blocks from every peer the trackers list, rarest first, each peer kept as busy as its measured rate and round-trip time allow; every piece's SHA-1 is checked, and a peer that sends a bad piece is dropped for the session. Until every piece is verified the data lives in a hidden DEST/.NAME.part folder with a resume record, so an interrupted download continues where it stopped. Exits 5 when no peer supplies any data for --timeout ms. With --seed, keeps serving after completion until SIGINT/SIGTERM.`

  static examples = [
    '<%= config.bin %> <%= command.id %> ./ubuntu.torrent -o ./downloads',
    '<%= config.bin %> <%= command.id %> "magnet:?xt=urn:btih:…&tr=http://127.0.0.1:6969/announce" -o ./downloads',
    '<%= config.bin %> <%= command.id %> report.pdf --tracker http://127.0.0.1:6969/announce -o cluster:/shared',
  ]

  static args = {
    source: Args.string({description: '.torrent path or URL, magnet, or a name in the tracker pool.', required: true}),
  }

  static flags = {
    output: Flags.string({char: 'o', description: 'Folder the content goes into (local, or a backend path such as cluster:/dir).', required: true}),
    tracker: Flags.string({description: 'Tracker announce URL, added to the torrent\'s (repeatable); needed to look up a name.', multiple: true}),
    seed: Flags.boolean({description: 'Keep seeding after the download completes, until SIGINT/SIGTERM.'}),
    host: Flags.string({description: 'Address to listen on and connect from.', default: '127.0.0.1'}),
    port: Flags.integer({char: 'p', description: 'Port for incoming peers (0 picks a free one).', default: 0, min: 0, max: 65535}),
    timeout: Flags.integer({description: 'Give up (exit 5) when no peer has supplied data for this many ms; 0 waits forever.', default: 60_000, min: 0}),
    peer: Flags.string({description: 'A peer HOST:PORT to connect to besides the trackers\' (repeatable).', multiple: true}),
  }

  async run(): Promise<GetResult> {
    const {flags, args} = this
    const torrent = await import('../../torrent/index.js')
    const source = await torrent.resolveSource(args.source, flags.tracker ?? [])
    const target = await this.target(flags.output)
    const progress = this.progress()
    const stopSignal = new AbortController()
    const onSignal = (): void => stopSignal.abort()
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    let got: Awaited<ReturnType<typeof torrent.getTorrent>>
    try {
      got = await torrent.getTorrent({
        source,
        target,
        host: flags.host,
        port: flags.port,
        timeoutMs: flags.timeout,
        peers: flags.peer,
        verbose: flags.verbose,
        signal: stopSignal.signal,
        log: (line) => (flags.verbose ? process.stderr.write(line + '\n') : undefined),
        onStart: ({meta, resumedBytes}) => {
          progress.addTotal(meta.length)
          if (resumedBytes > 0) {
            progress.advance(resumedBytes)
            this.info(`resuming ${meta.name}: ${formatBytes(resumedBytes)} of ${formatBytes(meta.length)} already verified`)
          }
        },
        onPiece: (bytes) => progress.advance(bytes),
      })
    } finally {
      progress.stop()
    }
    const {result, swarm} = got
    const rate = result.seconds > 0 ? (result.fetched - result.wasted) / result.seconds : 0
    const uploaders = result.peers.filter((p) => p.downloaded > 0).length
    this.log(`saved ${result.path} (${formatBytes(result.size)}; fetched ${formatBytes(result.fetched)} from ${uploaders} peers in ${result.seconds.toFixed(1)} s, ${formatBytes(rate)}/s)`)
    for (const ban of result.banned) this.info(`banned ${ban.host}: ${ban.reason}`)
    if (flags.seed && !stopSignal.signal.aborted) {
      this.info(`seeding ${result.name} on ${swarm.address} until SIGINT/SIGTERM`)
      await new Promise<void>((resolve) => {
        if (stopSignal.signal.aborted) resolve()
        stopSignal.signal.addEventListener('abort', () => resolve())
      })
    }
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await swarm.stop()
    return {...result, peers: swarm.peerReports()}
  }

  private async target(output: string): Promise<TargetLocation> {
    if (/^[a-z]+:/.test(output)) {
      const parsed = parseRemotePath(output)
      const remote = await (await this.session()).remote(output)
      return {adapter: remote.adapter, dir: remote.path, shown: parsed.backend ? `${parsed.backend}:${remote.path}` : remote.path}
    }
    const dir = nodePath.resolve(output)
    return {dir, shown: output}
  }
}
