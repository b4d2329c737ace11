import {Args, Flags} from '@oclif/core'

import {UsageError} from '../base/index.js'
import {FileCommand} from '../cli/file-command.js'
import {share} from '../ops/features.js'

export interface ShareResult {
  path: string
  url: string
  /** Cluster shares: the torrent's infohash and where the tracker serves the .torrent. */
  infoHash?: string
  torrent?: string
}

export default class Share extends FileCommand<typeof Share> {
  static summary = 'Publish a file or directory and print its public link.'
  static description = `Yandex.Disk: publishes it and prints the public URL. Cluster: with a BitTorrent tracker (--tracker, DISK_TRACKER or the config key torrent.tracker), makes a torrent of it, registers the torrent in the tracker's pool and prints its magnet link; peers fetch it while a seeder serves it, so --seed keeps this command serving it until SIGINT/SIGTERM (or run "torrent seed URL --data cluster:/path" with the .torrent URL it reports). Other backends, or the cluster without a tracker: exit 2.`

  static examples = [
    '<%= config.bin %> <%= command.id %> yandex:/photos/cat.jpg',
    '<%= config.bin %> <%= command.id %> yandex:/album --json',
    '<%= config.bin %> <%= command.id %> cluster:/video.mkv --tracker http://127.0.0.1:6969/announce --seed',
  ]

  static args = {path: Args.string({description: 'Remote path.', required: true})}

  static flags = {
    tracker: Flags.string({description: 'Cluster: the tracker announce URL (else DISK_TRACKER or the config key torrent.tracker).'}),
    seed: Flags.boolean({description: 'Cluster: keep serving the torrent to its peers until SIGINT/SIGTERM.', exclusive: ['json']}),
    host: Flags.string({description: 'With --seed: the address to serve peers on.', default: '127.0.0.1'}),
    port: Flags.integer({char: 'p', description: 'With --seed: the port for peers (0 picks a free one).', default: 0, min: 0, max: 65535}),
  }

  async run(): Promise<ShareResult> {
    const {args, flags} = this
    const session = await this.session()
    const target = await session.remote(args.path)
    const tracker = flags.tracker ?? session.settings.tracker
    if (target.adapter.publish || target.adapter.name !== 'cluster' || !tracker) {
      if (flags.seed) throw new UsageError('--seed shares through a tracker, which only the cluster backend does')
      if (target.adapter.name === 'cluster' && !target.adapter.publish) {
        throw new UsageError('the cluster backend shares files as torrents, and no tracker is configured', {
          hint: 'give --tracker URL, set DISK_TRACKER, or `disk-client config set torrent.tracker URL`',
        })
      }
      const url = await share(target)
      if (!this.jsonEnabled()) this.log(url)
      return {path: target.path, url}
    }

    const {shareOnTracker} = await import('../torrent/index.js')
    const progress = this.progress()
    const shared = await shareOnTracker(target.adapter, target.path, tracker, {
      onSize: (bytes) => progress.addTotal(bytes),
      onProgress: (bytes) => progress.advance(bytes),
    }).finally(() => progress.stop())
    if (!this.jsonEnabled()) this.log(shared.magnet)
    this.info(`registered ${target.path} (${shared.size} bytes) in the tracker's pool as ${shared.infoHash}; the .torrent: ${shared.torrentUrl}`)
    if (flags.seed) {
      // The seeder opens the backend itself: close ours first, so the embedded data dir is not held twice by this process.
      await session.close()
      await this.config.runCommand('torrent:seed', [shared.torrentUrl, '--data', `cluster:${target.path}`, '--host', flags.host, '-p', String(flags.port), ...(flags.verbose ? ['--verbose'] : [])])
    } else {
      this.info(`peers can fetch it while a seeder serves it: disk-client share --seed cluster:${target.path}, or disk-client torrent seed ${shared.torrentUrl} --data cluster:${target.path}`)
    }
    return {path: target.path, url: shared.magnet, infoHash: shared.infoHash, torrent: shared.torrentUrl}
  }
}
