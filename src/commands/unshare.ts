import {Args, Flags} from '@oclif/core'

import {UsageError} from '../base/index.js'
import {FileCommand} from '../cli/file-command.js'
import {unshare} from '../ops/features.js'

export default class Unshare extends FileCommand<typeof Unshare> {
  static summary = 'Revoke the public link of a file or directory.'
  static description = `Yandex.Disk: unpublishes it. Cluster: removes its torrent from the tracker's pool (--tracker, DISK_TRACKER or the config key torrent.tracker); the content is hashed again to find the torrent. Revoking a link that does not exist succeeds. Other backends, or the cluster without a tracker: exit 2.`

  static examples = ['<%= config.bin %> <%= command.id %> yandex:/photos/cat.jpg', '<%= config.bin %> <%= command.id %> cluster:/video.mkv --tracker http://127.0.0.1:6969/announce']
  static args = {path: Args.string({description: 'Remote path.', required: true})}
  static flags = {
    tracker: Flags.string({description: 'Cluster: the tracker announce URL (else DISK_TRACKER or the config key torrent.tracker).'}),
  }

  async run(): Promise<{path: string; infoHash?: string; removed?: boolean}> {
    const session = await this.session()
    const target = await session.remote(this.args.path)
    const tracker = this.flags.tracker ?? session.settings.tracker
    if (target.adapter.publish || target.adapter.name !== 'cluster' || !tracker) {
      if (target.adapter.name === 'cluster' && !target.adapter.unpublish) {
        throw new UsageError('the cluster backend shares files as torrents, and no tracker is configured', {
          hint: 'give --tracker URL, set DISK_TRACKER, or `disk-client config set torrent.tracker URL`',
        })
      }
      await unshare(target)
      this.info(`unshared ${target.path}`)
      return {path: target.path}
    }

    const {unshareOnTracker} = await import('../torrent/index.js')
    const progress = this.progress()
    const {infoHash, removed} = await unshareOnTracker(target.adapter, target.path, tracker, {
      onSize: (bytes) => progress.addTotal(bytes),
      onProgress: (bytes) => progress.advance(bytes),
    }).finally(() => progress.stop())
    this.info(removed ? `unshared ${target.path}: removed ${infoHash} from the tracker's pool` : `${target.path} was not shared (${infoHash} is not in the tracker's pool)`)
    return {path: target.path, infoHash, removed}
  }
}
