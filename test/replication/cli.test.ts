import {createServer} from 'node:net'

import {expect} from 'chai'

import {runCli} from '../helpers/cli.js'
import {Harness, type Proc, waitFor} from './helpers.js'

describe('replication put/get (CLI)', function () {
  this.timeout(40_000)
  const harness = new Harness()
  let coordinator: Proc
  let server: Proc

  before(async () => {
    coordinator = await harness.coordinator()
    server = await harness.server(coordinator.url)
    await waitFor('a master', async () => (await harness.call(coordinator.url, 'master')) === server.url)
  })
  after(() => harness.cleanup())

  it('puts and gets a value, printing exactly the value', async () => {
    const value = 'two lines\nand ünïcode  '
    const put = await runCli(['replication', 'put', 'greeting', value, '--coordinator', coordinator.url])
    expect(put.stderr).to.equal('')
    expect(put.code).to.equal(0)
    expect(put.stdout).to.equal('')

    const get = await runCli(['replication', 'get', 'greeting', '--coordinator', coordinator.url])
    expect(get.code).to.equal(0)
    expect(get.stdout).to.equal(value)
    expect(await harness.call(server.url, 'get', 'greeting')).to.equal(value)
  })

  it('accepts HOST:PORT for --coordinator and prints JSON with --json', async () => {
    const hostPort = new URL(coordinator.url).host
    expect((await runCli(['replication', 'put', 'k', 'v', '--coordinator', hostPort])).code).to.equal(0)
    const get = await runCli(['replication', 'get', 'k', '--coordinator', hostPort, '--json'])
    expect(get.code).to.equal(0)
    expect(JSON.parse(get.stdout)).to.deep.equal({key: 'k', value: 'v'})
  })

  it('exits 4 with one error line for a missing key', async () => {
    const get = await runCli(['replication', 'get', 'nothing-here', '--coordinator', coordinator.url])
    expect(get.code).to.equal(4)
    expect(get.stdout).to.equal('')
    expect(get.stderr.trim().split('\n')).to.have.length(1)
    expect(get.stderr).to.match(/^Error: .*nothing-here.*ErrNoKey/)
  })

  it('exits 5 when no coordinator answers before the deadline', async () => {
    const port = await closedPort()
    const started = Date.now()
    const get = await runCli(['replication', 'get', 'k', '--coordinator', `127.0.0.1:${port}`, '--timeout', '700'])
    expect(get.code).to.equal(5)
    expect(get.stderr).to.match(/^Error: .*700 ms/)
    expect(Date.now() - started).to.be.below(8000)
    const put = await runCli(['replication', 'put', 'k', 'v', '--coordinator', `127.0.0.1:${port}`, '--timeout', '500'])
    expect(put.code).to.equal(5)
  })

  it('exits 2 for a coordinator address that is not one', async () => {
    const get = await runCli(['replication', 'get', 'k', '--coordinator', 'ftp://example/'])
    expect(get.code).to.equal(2)
    expect(get.stderr).to.match(/^Error: bad coordinator address/)
  })

  it('exits 5 when the coordinator names no master before the deadline', async () => {
    const lonely = await harness.coordinator('--tick-ms', '0')
    const put = await runCli(['replication', 'put', 'k', 'v', '--coordinator', lonely.url, '--timeout', '600'])
    expect(put.code).to.equal(5)
    expect(put.stderr).to.match(/no master/)
  })
})

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const {port} = probe.address() as {port: number}
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}
