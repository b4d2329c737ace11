// The proxy in front of our main and three real redis-server replicas.
import {expect} from 'chai'
import path from 'node:path'
import type {Redis} from 'ioredis'

import {runCli} from '../helpers/cli.js'
import {client, ensureRedis, info, startDb, startRedis, removeTempDirs, stop, tempDir, waitFor, type Proc} from '../helpers/db.js'

function calls(stats: Record<string, string>, command: string): number {
  return Number(/calls=(\d+)/.exec(stats[`cmdstat_${command}`] ?? '')?.[1] ?? 0)
}

describe('db proxy over three real redis-server replicas', function () {
  this.timeout(60_000)
  let dir: string
  let main: Proc
  const replicas: Proc[] = []
  const procs: Proc[] = []
  const clients: Redis[] = []
  let m: Redis
  let rs: Redis[]
  let proxy: Proc
  let p: Redis

  const open = (port: number): Redis => {
    const c = client(port)
    clients.push(c)
    return c
  }

  before(async () => {
    ensureRedis()
    dir = await tempDir()
    main = await startDb(['db', 'main', '--port', '0', '--data-dir', path.join(dir, 'main')])
    procs.push(main)
    m = open(main.port)
    for (let i = 0; i < 3; i++) replicas.push(await startRedis(path.join(dir, `r${i}`), ['--replicaof', '127.0.0.1', String(main.port)]))
    procs.push(...replicas)
    rs = replicas.map((r) => open(r.port))
    const list = replicas.map((r) => `127.0.0.1:${r.port}`).join(',')
    proxy = await startDb(['db', 'proxy', '--port', '0', '--main', `127.0.0.1:${main.port}`, '--replicas', list])
    procs.push(proxy)
    p = open(proxy.port)
    await waitFor(async () => (await p.info('reads')).split('state=up').length - 1 === 3, 20_000, 'three replicas up in the proxy')
  })

  after(async () => {
    for (const c of clients) c.disconnect()
    for (const proc of procs) await stop(proc)
    await removeTempDirs()
  })

  it('sends SETs to the main and spreads 300 GETs evenly, none to the main', async () => {
    await m.config('RESETSTAT')
    for (let i = 0; i < 30; i++) expect(await p.set(`key${i}`, `value${i}`)).to.equal('OK')
    expect(calls(await info(m, 'commandstats'), 'set')).to.equal(30)
    expect(await m.get('key29')).to.equal('value29')
    expect(await m.wait(3, 5000)).to.equal(3)
    await waitFor(async () => (await p.info('reads')).split('state=up').length - 1 === 3, 10_000, 'replicas within lag')
    for (const r of rs) await r.config('RESETSTAT')
    await m.config('RESETSTAT')
    await p.config('RESETSTAT')
    for (let i = 0; i < 300; i++) expect(await p.get(`key${i % 30}`)).to.equal(`value${i % 30}`)
    for (const r of rs) expect(calls(await info(r, 'commandstats'), 'get')).to.be.within(99, 101)
    expect(calls(await info(m, 'commandstats'), 'get')).to.equal(0)

    const status = await runCli(['db', 'status', '--proxy', `127.0.0.1:${proxy.port}`, '--json'])
    expect(status.code, status.stderr).to.equal(0)
    const stats = JSON.parse(status.stdout)
    expect(stats.main).to.deep.equal({addr: `127.0.0.1:${main.port}`, reads: 0})
    expect(stats.replicas.map((r: {addr: string; reads: number; state: string}) => [r.addr, r.reads, r.state])).to.deep.equal(replicas.map((r) => [`127.0.0.1:${r.port}`, 100, 'up']))
    const table = await runCli(['db', 'status', '--proxy', `127.0.0.1:${proxy.port}`])
    expect(table.stdout).to.match(/^NODE\s+ADDRESS\s+READS\s+STATE\s+LAG BYTES/)
    expect(table.stdout).to.match(/replica2\s+127\.0\.0\.1:\d+\s+100\s+up/)
  })

  it('skips a killed replica without an error to the client', async () => {
    await stop(replicas[2])
    for (let i = 0; i < 60; i++) expect(await p.get(`key${i % 30}`)).to.equal(`value${i % 30}`)
    await waitFor(async () => /replica2:[^\r\n]*state=down/.test(await p.info('reads')), 5000, 'replica2 down')
    await p.config('RESETSTAT')
    for (let i = 0; i < 40; i++) await p.get('key1')
    const reads = (await runCli(['db', 'status', '--proxy', `127.0.0.1:${proxy.port}`, '--json'])).stdout
    const stats = JSON.parse(reads)
    expect(stats.replicas.map((r: {reads: number}) => r.reads)).to.deep.equal([20, 20, 0])
    expect(stats.main.reads).to.equal(0)
  })

  it('--read-your-writes: a connection reads its own writes at once', async () => {
    const ryw = await startDb(['db', 'proxy', '--port', '0', '--main', `127.0.0.1:${main.port}`, '--replicas', replicas.slice(0, 2).map((r) => `127.0.0.1:${r.port}`).join(','), '--read-your-writes'])
    procs.push(ryw)
    const c = open(ryw.port)
    await waitFor(async () => (await c.info('reads')).split('state=up').length - 1 === 2, 10_000, 'replicas up')
    for (let i = 0; i < 100; i++) {
      await c.set('mine', `v${i}`)
      expect(await c.get('mine')).to.equal(`v${i}`)
    }
    // those reads were the main's: the replicas acknowledge once a second
    expect(await c.info('reads')).to.match(/main:reads=100,addr=127.0.0.1:\d+\r\n/)
    // once the replicas have acknowledged the writes, reads go to them again
    await waitFor(async () => {
      await c.get('mine')
      return /replica0:addr=[^,]+,reads=[1-9]/.test(await c.info('reads'))
    }, 10_000, 'reads back on the replicas')
  })
})
