import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {collect, spawnCli} from '../helpers/cli.js'

// Scripts stop a server as soon as it has printed its address. The handler
// must be in place by then, or the process dies by the signal instead of
// stopping cleanly with exit 0 (seen for half the tries before).
describe('server commands: SIGTERM right after the first stdout line', function () {
  this.timeout(60_000)
  let dir: string
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'disk-client-signals-'))
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  const servers: Array<[string, (dir: string) => string[]]> = [
    ['replication coordinator', () => ['replication', 'coordinator', '--port', '0']],
    ['dns serve', () => ['dns', 'serve', '--port', '0']],
    ['cluster router', (d) => ['cluster', 'router', '--servers', '1', '--replicas', '1', '--data-dir', path.join(d, 'router'), '-p', '0']],
    ['db main', (d) => ['db', 'main', '-p', '0', '--data-dir', path.join(d, 'db')]],
    ['torrent tracker', () => ['torrent', 'tracker', '-p', '0']],
    ['web', (d) => ['web', '-p', '0', '--no-open', '--backend', 'local']],
    ['serve webdav', () => ['serve', 'webdav', '-p', '0', '--backend', 'local']],
  ]

  for (const [name, args] of servers) {
    it(`${name} exits 0`, async () => {
      for (let attempt = 0; attempt < 3; attempt++) {
        const child = spawnCli(args(dir), {env: {HOME: dir, DISK_LOCAL_ROOT: path.join(dir, 'local')}})
        const done = collect(child, {timeoutMs: 30_000})
        await new Promise<void>((resolve) => {
          let out = ''
          child.stdout!.on('data', (chunk: Buffer | string) => {
            out += chunk.toString()
            if (out.includes('\n')) resolve()
          })
          child.once('exit', () => resolve())
        })
        child.kill('SIGTERM')
        const result = await done
        expect({code: result.code, signal: result.signal}, `${name}, try ${attempt + 1}: ${result.stderr}`).to.deep.equal({code: 0, signal: null})
      }
    })
  }
})
