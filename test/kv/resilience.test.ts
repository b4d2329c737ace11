import {expect} from 'chai'
import type {Redis} from 'ioredis'

import {TestCluster, waitFor} from './helpers.js'

async function writeKeys(client: Redis, prefix: string, count: number): Promise<void> {
  const pipeline = client.pipeline()
  for (let i = 0; i < count; i++) pipeline.set(`${prefix}${i}`, `value-${prefix}${i}`)
  const results = (await pipeline.exec())!
  for (const [error, reply] of results) {
    expect(error).to.equal(null)
    expect(reply).to.equal('OK')
  }
}

async function expectKeys(client: Redis, prefix: string, count: number): Promise<void> {
  const pipeline = client.pipeline()
  for (let i = 0; i < count; i++) pipeline.get(`${prefix}${i}`)
  const results = (await pipeline.exec())!
  const wrong = results.filter(([error, reply], i) => error !== null || reply !== `value-${prefix}${i}`)
  expect(wrong.length, `first wrong: ${JSON.stringify(wrong[0])}`).to.equal(0)
}

describe('kv hinted handoff, tombstones, buffer and router restart (real processes)', function () {
  this.timeout(90_000)
  const cluster = new TestCluster({antiEntropyMs: 0})

  before(async () => {
    await cluster.start()
  })
  after(async () => {
    await cluster.stop()
  })

  it('hinted handoff: 1,000 keys written while a server is down read back after each other server is killed in turn', async () => {
    const client = cluster.redis(1)
    await cluster.killServer(0)
    await writeKeys(client, 'h', 1000)
    expect((await cluster.info()).hints_pending).to.be.greaterThan(0)
    await cluster.startServer(0)
    await cluster.waitUp(3)
    await waitFor('hints delivered', async () => (await cluster.info()).hints_pending === 0, 20_000)
    for (const victim of [1, 2]) {
      await cluster.killServer(victim)
      await cluster.waitUp(2)
      await expectKeys(client, 'h', 1000)
      await cluster.startServer(victim)
      await cluster.waitUp(3)
      await waitFor('hints delivered', async () => (await cluster.info()).hints_pending === 0, 20_000)
    }
  })

  it('tombstones: a key deleted while one replica is down stays deleted when it returns', async () => {
    const client = cluster.redis(6)
    await client.set('doomed', 'alive')
    const info = await cluster.info()
    const [address] = (await client.call('LOCATE', 'doomed')) as string[]
    const victim = info.members.find((member) => member.addr === address)!.number
    await cluster.killServer(victim)
    await cluster.waitUp(2)
    expect(await client.del('doomed')).to.equal(1)
    expect((await cluster.info()).members[victim].hints).to.be.greaterThan(0)
    await cluster.startServer(victim)
    await cluster.waitUp(3)
    await waitFor('hints delivered', async () => (await cluster.info()).hints_pending === 0, 20_000)
    expect(await client.get('doomed')).to.equal(null)
    expect(await client.exists('doomed')).to.equal(0)
    expect(await client.keys('doom*')).to.deep.equal([])
    const {Redis} = await import('ioredis')
    for (const location of (await client.call('LOCATE', 'doomed')) as string[]) {
      const direct = new Redis({host: '127.0.0.1', port: Number(location.split(':')[1]), maxRetriesPerRequest: 0})
      try {
        expect(await direct.get('6:doomed')).to.equal(null)
      } finally {
        direct.disconnect()
      }
    }
  })

  it('buffer and router restart: writes kept as hints and in the buffer survive SIGKILL of the router', async () => {
    const client = cluster.redis(7)
    await cluster.killServer(0)
    await cluster.waitUp(2)
    await writeKeys(client, 'hint', 100)
    await cluster.killServer(1)
    await cluster.killServer(2)
    await cluster.waitUp(0)
    expect(await client.get('never-written').catch((error: Error) => error.message)).to.match(/^NOSERVER/)
    await writeKeys(client, 'buf', 50)
    expect(await client.set('buffered', 'kept')).to.equal('OK')
    const before = await cluster.info()
    expect(before.buffered_writes).to.equal(51)
    expect(before.hints_pending).to.be.greaterThan(0)
    expect(await client.get('buffered')).to.equal('kept')
    await expectKeys(client, 'buf', 50)

    await cluster.killRouter()
    await cluster.startRouter()
    const after = await cluster.info()
    expect(after.buffered_writes).to.equal(51)
    expect(after.hints_pending).to.equal(before.hints_pending)
    const fresh = cluster.redis(7)
    expect(await fresh.get('buffered')).to.equal('kept')

    await Promise.all([0, 1, 2].map((i) => cluster.startServer(i)))
    await cluster.waitUp(3)
    await waitFor('hints and buffer delivered', async () => {
      const info = await cluster.info()
      return info.hints_pending === 0 && info.buffered_writes === 0
    }, 20_000)
    expect(await fresh.get('buffered')).to.equal('kept')
    await expectKeys(fresh, 'hint', 100)
    await expectKeys(fresh, 'buf', 50)
    // every copy landed: any single server may now go down
    for (const victim of [0, 1, 2]) {
      await cluster.killServer(victim)
      await cluster.waitUp(2)
      await expectKeys(fresh, 'hint', 100)
      await expectKeys(fresh, 'buf', 50)
      await cluster.startServer(victim)
      await cluster.waitUp(3)
    }
  })
})
