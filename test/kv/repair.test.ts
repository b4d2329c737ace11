import {rmSync} from 'node:fs'

import {expect} from 'chai'
import {ClassicLevel} from 'classic-level'
import {Redis} from 'ioredis'

import {headerKey, valueKey} from '../../src/kv/storage.js'
import {TestCluster, waitFor} from './helpers.js'

/** GET of an internal key straight from a storage server. */
async function directGet(address: string, key: string): Promise<string | null> {
  const client = new Redis({host: '127.0.0.1', port: Number(address.split(':')[1]), maxRetriesPerRequest: 0, retryStrategy: () => null})
  client.on('error', () => undefined)
  try {
    return await client.get(key)
  } finally {
    client.disconnect()
  }
}

/** Stops the first replica of `key` (db 0), deletes the key from its LevelDB directly, restarts it; returns its number. */
async function loseKeyOnOneReplica(cluster: TestCluster, client: Redis, key: string): Promise<number> {
  const info = await cluster.info()
  const [address] = (await client.call('LOCATE', key)) as string[]
  const victim = info.members.find((member) => member.addr === address)!.number
  await cluster.killServer(victim, 'SIGTERM')
  await cluster.waitUp(2)
  const db = new ClassicLevel<Buffer, Buffer>(cluster.serverDir(victim), {keyEncoding: 'buffer', valueEncoding: 'buffer'})
  const internal = Buffer.from(`0:${key}`)
  await db.batch([{type: 'del', key: headerKey(internal)}, {type: 'del', key: valueKey(internal)}], {sync: true})
  await db.close()
  await cluster.startServer(victim)
  await cluster.waitUp(3)
  return victim
}

function addressOf(info: Awaited<ReturnType<TestCluster['info']>>, server: number): string {
  return info.members[server].addr
}

describe('kv read repair (anti-entropy off, real processes)', function () {
  this.timeout(60_000)
  const cluster = new TestCluster({antiEntropyMs: 0})
  before(async () => cluster.start())
  after(async () => cluster.stop())

  it('repairs a replica that lost a key on the next read', async () => {
    const client = cluster.redis(0)
    await client.set('rr', 'repaired-value')
    const victim = await loseKeyOnOneReplica(cluster, client, 'rr')
    const address = addressOf(await cluster.info(), victim)
    expect(await directGet(address, '0:rr')).to.equal(null)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(await directGet(address, '0:rr'), 'nothing but a read repairs it').to.equal(null)
    expect(await client.get('rr')).to.equal('repaired-value')
    await waitFor('read repair', async () => (await directGet(address, '0:rr')) === 'repaired-value', 5000)
  })
})

describe('kv anti-entropy (1 s rounds, real processes)', function () {
  this.timeout(90_000)
  const cluster = new TestCluster({antiEntropyMs: 1000})
  before(async () => cluster.start())
  after(async () => cluster.stop())

  it('repairs a replica that lost a key with no read, within 30 s', async () => {
    const client = cluster.redis(0)
    await client.set('ae', 'converged')
    const victim = await loseKeyOnOneReplica(cluster, client, 'ae')
    const address = addressOf(await cluster.info(), victim)
    const started = Date.now()
    await waitFor('anti-entropy repair', async () => (await directGet(address, '0:ae')) === 'converged', 30_000, 200)
    expect(Date.now() - started).to.be.below(30_000)
  })

  it('refills a server restarted on an empty data dir', async () => {
    const client = cluster.redis(0)
    const pipeline = client.pipeline()
    for (let i = 0; i < 300; i++) pipeline.set(`fill${i}`, `v${i}`)
    await pipeline.exec()
    await cluster.killServer(1)
    await cluster.waitUp(2)
    rmSync(cluster.serverDir(1), {recursive: true, force: true})
    await cluster.startServer(1)
    await cluster.waitUp(3)
    const address = addressOf(await cluster.info(), 1)
    const mine: number[] = []
    for (let i = 0; i < 300; i++) {
      if (((await client.call('LOCATE', `fill${i}`)) as string[]).includes(address)) mine.push(i)
    }
    expect(mine.length).to.be.greaterThan(50)
    const direct = new Redis({host: '127.0.0.1', port: Number(address.split(':')[1]), maxRetriesPerRequest: 0})
    try {
      await waitFor('refill', async () => {
        const values = await Promise.all(mine.map((i) => direct.get(`0:fill${i}`)))
        return values.every((value, j) => value === `v${mine[j]}`)
      }, 30_000, 250)
    } finally {
      direct.disconnect()
    }
  })
})
