import {Args, Flags} from '@oclif/core'
import {rename, rm, writeFile} from 'node:fs/promises'

import {mapFsError} from '../../backends/fs-errors.js'
import {FileCommand} from '../../cli/file-command.js'

export interface CreateResult {
  infoHash: string
  magnet: string
  pieces: number
  pieceLength: number
  size: number
}

export default class TorrentCreate extends FileCommand<typeof TorrentCreate> {
  static summary = 'Make a .torrent (BitTorrent v1) of a file or folder on any backend.'
  static description = `SOURCE with a backend prefix (cluster:/a, yandex:/a, local:/a) is read through that backend; without one it is a path on this machine. A folder becomes a multi-file torrent. The content is streamed once and hashed in pieces (default: the power of two from 16 KiB that gives at most 2,000 pieces). Prints "infohash <40 hex>" and the magnet link.`

  static examples = [
    '<%= config.bin %> <%= command.id %> ./video.mkv -o video.torrent --tracker http://127.0.0.1:6969/announce',
    '<%= config.bin %> <%= command.id %> cluster:/photos -o photos.torrent --piece-length 262144 --json',
  ]

  static args = {source: Args.string({description: 'File or folder to share.', required: true})}

  static flags = {
    output: Flags.string({char: 'o', description: 'Where to write the .torrent file.', required: true}),
    tracker: Flags.string({description: 'Tracker announce URL (repeatable; the first is "announce").', multiple: true}),
    'piece-length': Flags.integer({description: 'Piece length in bytes, a power of two from 16384.'}),
    name: Flags.string({description: 'Torrent name (default: the source\'s name).'}),
  }

  async run(): Promise<CreateResult> {
    const {args, flags} = this
    const {createTorrent, magnetUri} = await import('../../torrent/index.js')
    const session = await this.session()
    const source = /^[a-z]+:/.test(args.source) ? await session.remote(args.source) : session.local(args.source)
    const progress = this.progress()
    const {torrent, meta} = await createTorrent(source.adapter, source.path, {
      announce: flags.tracker ?? [],
      pieceLength: flags['piece-length'],
      name: flags.name,
      onSize: (bytes) => progress.addTotal(bytes),
      onProgress: (bytes) => progress.advance(bytes),
    }).finally(() => progress.stop())
    const temporary = `${flags.output}.${process.pid}.part`
    try {
      await writeFile(temporary, torrent)
      await rename(temporary, flags.output)
    } catch (error) {
      await rm(temporary, {force: true})
      throw mapFsError(error, `cannot write ${flags.output}`, 'dir')
    }
    const magnet = magnetUri(meta)
    if (!this.jsonEnabled()) {
      this.log(`infohash ${meta.infoHashHex}`)
      this.log(magnet)
    }
    this.info(`wrote ${flags.output}: ${meta.name}, ${meta.length} bytes, ${meta.pieces.length} pieces of ${meta.pieceLength}`)
    return {infoHash: meta.infoHashHex, magnet, pieces: meta.pieces.length, pieceLength: meta.pieceLength, size: meta.length}
  }
}
