import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {runCli} from '../helpers/cli.js'
import {freePort, getJson, SiteHarness, waitFor} from './helpers.js'

describe('site: commands', function () {
  this.timeout(90_000)
  const harness = new SiteHarness()

  afterEach(() => harness.cleanup())

  it('site status prints a row per local, or the /_status JSON with --json', async () => {
    const port = await freePort()
    const local = await harness.local('north', `http://127.0.0.1:${port}`, {generateMs: 100})
    const log = join(harness.dir(), 'central.log')
    const central = await harness.central(port, {north: local.url, south: 'http://127.0.0.1:1'}, ['--poll-ms', '200', '--timeout-ms', '1000', '--log', log])
    await waitFor('north up after a pull', async () => {
      const north = (await getJson<{locals: Array<{name: string; state: string; lastPull: string | null}>}>(`${central.url}/_status`)).locals[0]
      return north.state === 'up' && north.lastPull !== null
    })
    const table = await runCli(['site', 'status', '--central', central.url])
    expect(table.code, table.stderr).to.equal(0)
    expect(table.stdout).to.match(/^LOCAL\s+STATE\s+LAST PULL/m)
    expect(table.stdout).to.match(/^north\s+up\s+\d{4}-/m)
    const json = await runCli(['site', 'status', '--central', central.url, '--json'])
    expect(json.code).to.equal(0)
    const status = JSON.parse(json.stdout) as {locals: Array<Record<string, unknown>>}
    expect(status.locals.map((l) => l.name)).to.deep.equal(['north', 'south'])
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(lines.some((e) => e.event === 'poll' && e.local === 'north')).to.equal(true)
    expect(lines.some((e) => e.event === 'failure' && e.local === 'south')).to.equal(true)
    expect(lines.every((e) => typeof e.time === 'string' && typeof e.event === 'string')).to.equal(true)
    expect(status.locals[0]).to.have.keys('name', 'url', 'state', 'lastPull', 'lastPush', 'lastSeq', 'lag', 'pulled', 'pushed', 'errors', 'clockOffsetMs')
  })

  it('exits 5 when the central cannot be reached, 2 on a bad --local, and 0 on SIGTERM', async () => {
    const down = await runCli(['site', 'status', '--central', 'http://127.0.0.1:1'])
    expect(down.code).to.equal(5)
    expect(down.stderr).to.match(/cannot reach the central/)
    const bad = await runCli(['site', 'central', '--data-dir', harness.dir(), '--local', 'no-url-here'])
    expect(bad.code).to.equal(2)
    expect(bad.stderr).to.match(/NAME=URL/)
    const port = await freePort()
    const central = await harness.central(port, {})
    const exited = new Promise<number | null>((resolve) => central.child.once('exit', (code) => resolve(code)))
    central.child.kill('SIGTERM')
    expect(await exited).to.equal(0)
  })
})
