// cat (byte-exact ranges), size and tree through the spawned CLI, on the
// local backend and on the embedded cluster (a temp DISK_DATA_DIR).
import {expect} from 'chai'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {runCli} from '../helpers/cli.js'

/** Seeded printable content, so stdout (collected as text) compares byte for byte. */
function content(length: number, seed = 17): string {
  let x = seed
  let out = ''
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648
    out += String.fromCharCode(33 + (x % 90))
  }

  return out
}

for (const backend of ['local', 'cluster'] as const) {
  describe(`cat, size and tree on ${backend}`, function () {
    this.timeout(90_000)
    let work: string
    let env: NodeJS.ProcessEnv
    const data = content(300_000)
    const cli = (...args: string[]) => runCli(args, {env, cwd: work, timeoutMs: 60_000})

    before(async () => {
      work = await fs.mkdtemp(path.join(os.tmpdir(), `disk-client-cat-${backend}-`))
      env = {HOME: work, DISK_BACKEND: backend, DISK_LOCAL_ROOT: path.join(work, 'root'), DISK_DATA_DIR: path.join(work, 'cluster')}
      await fs.mkdir(path.join(work, 'up/sub/deeper'), {recursive: true})
      await fs.writeFile(path.join(work, 'up/big.txt'), data)
      await fs.writeFile(path.join(work, 'up/sub/one.txt'), 'one')
      await fs.writeFile(path.join(work, 'up/sub/deeper/two.txt'), 'two!')
      const upload = await cli('upload', './up', '/tree')
      expect(upload.code, upload.stderr).to.equal(0)
    })

    after(async () => {
      await fs.rm(work, {recursive: true, force: true})
    })

    it('writes exactly the bytes asked for, across chunk boundaries and at the edges', async () => {
      const cases: Array<[number, number | undefined]> = [
        [0, undefined],
        [0, 1],
        [65_535, 3],
        [100_000, 70_000],
        [data.length - 5, undefined],
        [data.length - 5, 100],
        [data.length, undefined],
        [data.length + 10, 5],
        [42, 0],
      ]
      for (const [offset, count] of cases) {
        const args = ['cat', '/tree/big.txt', '--offset', String(offset), ...(count === undefined ? [] : ['--count', String(count)])]
        const result = await cli(...args)
        expect(result.code, result.stderr).to.equal(0)
        const want = data.slice(offset, count === undefined ? undefined : offset + count)
        expect(result.stdout.length, args.join(' ')).to.equal(want.length)
        expect(result.stdout === want, args.join(' ')).to.equal(true)
      }
    })

    it('cat of a directory is exit 2, of a missing file exit 4', async () => {
      expect((await cli('cat', '/tree/sub')).code).to.equal(2)
      expect((await cli('cat', '/tree/missing.txt')).code).to.equal(4)
    })

    it('size counts files and bytes; tree draws the tree, --level 1 only the children', async () => {
      const size = await cli('size', '/tree', '--json')
      expect(JSON.parse(size.stdout)).to.deep.equal({files: 3, bytes: data.length + 7})
      const tree = await cli('tree', '/tree')
      expect(tree.stdout).to.equal(['/tree', '├── big.txt', '└── sub/', '    ├── deeper/', '    │   └── two.txt', '    └── one.txt', ''].join('\n'))
      const level = await cli('tree', '/tree', '--level', '1')
      expect(level.stdout).to.equal(['/tree', '├── big.txt', '└── sub/', ''].join('\n'))
    })
  })
}
