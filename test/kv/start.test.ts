import type {ChildProcess} from 'node:child_process'
import {createInterface} from 'node:readline'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {expect} from 'chai'
import {Redis} from 'ioredis'

import {spawnCli} from '../helpers/cli.js'
import {killAndWait, waitFor} from './helpers.js'

describe('cluster start (child processes)', function () {
  this.timeout(60_000)
  const dir = mkdtempSync(path.join(tmpdir(), 'kv-start-'))
  let child: ChildProcess
  before(() => {
    child = spawnCli(['cluster', 'start', '--servers', '3', '--replicas', '2', '--port', '0', '--data-dir', dir])
  })
  after(async () => {
    await killAndWait(child)
    rmSync(dir, {recursive: true, force: true})
  })

  it('prints the router and server addresses, serves clients, and stops everything on SIGTERM', async () => {
    const lines: string[] = []
    createInterface({input: child.stdout!}).on('line', (line) => lines.push(line))
    await waitFor('four addresses', () => lines.length >= 4, 40_000)
    expect(lines[0]).to.match(/^router 127\.0\.0\.1:\d+$/)
    for (let i = 0; i < 3; i++) expect(lines[i + 1]).to.match(new RegExp(`^server${i} 127\\.0\\.0\\.1:\\d+$`))
    const port = Number(lines[0].split(':')[1])
    const client = new Redis({host: '127.0.0.1', port, maxRetriesPerRequest: 0})
    try {
      await waitFor('3 servers up', async () => /servers_up:3/.test(await client.info('cluster')))
      expect(await client.set('k', 'v')).to.equal('OK')
      expect(await client.get('k')).to.equal('v')
    } finally {
      client.disconnect()
    }
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    child.kill('SIGTERM')
    expect(await exited).to.equal(0)
    // the router is gone with it
    const probe = new Redis({host: '127.0.0.1', port, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true})
    probe.on('error', () => undefined)
    const refused = await probe.connect().then(() => false, () => true)
    probe.disconnect()
    expect(refused).to.equal(true)
  })
})
