import {expect} from 'chai'

import {runCli} from './helpers/cli.js'

describe('disk-client entry point', () => {
  it('prints help listing its topics and exits 0', async () => {
    const result = await runCli(['--help'])
    expect(result.code).to.equal(0)
    expect(result.stdout).to.include('USAGE')
  })

  it('answers an unknown command with one line on stderr and exit 2', async () => {
    const result = await runCli(['no-such-command'])
    expect(result.code).to.equal(2)
    expect(result.stderr.trim().split('\n')).to.have.length(1)
    expect(result.stderr).to.match(/^Error: /)
  })
})
