// The db commands' bad-input paths: one line on stderr and the typed exit code.
import {expect} from 'chai'
import os from 'node:os'
import path from 'node:path'

import {freePort} from '../helpers/db.js'
import {runCli} from '../helpers/cli.js'

describe('db commands: bad input', function () {
  this.timeout(30_000)

  it('rejects a bad address with a usage error (exit 2)', async () => {
    const dir = path.join(os.tmpdir(), 'db-cli-unused')
    for (const args of [
      ['db', 'replica', '--main', 'nonsense', '--data-dir', dir],
      ['db', 'proxy', '--main', '127.0.0.1:1', '--replicas', '127.0.0.1:99999'],
      ['db', 'status', '--proxy', 'host-without-port'],
      ['db', 'sync', '--main', ':'],
    ]) {
      const result = await runCli(args)
      expect(result.code, args.join(' ')).to.equal(2)
      expect(result.stderr.trim().split('\n'), result.stderr).to.have.length(1)
      expect(result.stderr).to.match(/bad address|expected HOST:PORT/)
    }
  })

  it('says when the proxy or the main cannot be reached (exit 5)', async () => {
    const port = await freePort()
    for (const args of [
      ['db', 'status', '--proxy', `127.0.0.1:${port}`],
      ['db', 'sync', '--main', `127.0.0.1:${port}`],
    ]) {
      const result = await runCli(args)
      expect(result.code, args.join(' ')).to.equal(5)
      expect(result.stderr).to.match(/cannot (reach|sync)/)
      expect(result.stderr.trim().split('\n')).to.have.length(1)
    }
  })
})
