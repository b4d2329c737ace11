import {readdirSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {expect} from 'chai'

import {runCli} from './helpers/cli.js'

/** Every command id, from the command files (`cluster/start.ts` is `cluster start`). */
function commandIds(): string[] {
  const root = fileURLToPath(new URL('../src/commands', import.meta.url))
  return (readdirSync(root, {recursive: true}) as string[])
    .filter((file) => file.endsWith('.ts'))
    .map((file) => file.slice(0, -3).split(path.sep).join(' '))
    .sort()
}

describe('disk-client entry point', function () {
  this.timeout(60_000)

  it('prints help listing every command and exits 0', async () => {
    const result = await runCli(['--help'])
    expect(result.code).to.equal(0)
    expect(result.stdout).to.include('USAGE')
    const ids = commandIds()
    expect(ids).to.include.members(['ls', 'upload', 'cluster start', 'dns serve', 'replication put', 'net send'])
    for (const id of ids) expect(result.stdout, id).to.match(new RegExp(`^  ${id} `, 'm'))
  })

  it("shows at least one example in every command's --help", async () => {
    const ids = commandIds()
    const results = await Promise.all(ids.map((id) => runCli([...id.split(' '), '--help'])))
    results.forEach((result, i) => {
      expect(result.code, ids[i]).to.equal(0)
      expect(result.stdout, ids[i]).to.match(/\nEXAMPLES\n  \$ disk-client /)
    })
  })

  it('answers an unknown command with one line on stderr and exit 2', async () => {
    const result = await runCli(['no-such-command'])
    expect(result.code).to.equal(2)
    expect(result.stderr.trim().split('\n')).to.have.length(1)
    expect(result.stderr).to.match(/^Error: /)
  })
})
