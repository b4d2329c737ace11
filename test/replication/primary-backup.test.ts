import {expect} from 'chai'

import {ReplicationClient} from '../../src/replication/client.js'
import {Harness, type Proc, type ViewStruct, waitFor} from './helpers.js'

interface Status {
  name: string
  role: string
  view: ViewStruct
  synced_view: number
  confirmed_view: number
  keys: number
  digest: string
}

// Real coordinator and server processes with the default timing (100 ms
// ticks, dead after 5), talked to with the xmlrpc package's client.
describe('replication primary/backup servers', function () {
  this.timeout(40_000)
  const harness = new Harness()
  const clients: ReplicationClient[] = []
  let coordinator: Proc

  const view = async () => (await harness.call(coordinator.url, 'view')) as ViewStruct
  const status = async (server: Proc) => (await harness.call(server.url, 'status')) as Status
  const client = (timeoutMs = 10_000) => {
    const c = new ReplicationClient({coordinator: coordinator.url, timeoutMs})
    clients.push(c)
    return c
  }

  /** Waits until the coordinator's view is {master, backup} and the master has acked it (so a failover may follow). */
  async function settled(master: Proc, backup?: Proc): Promise<ViewStruct | undefined> {
    return waitFor<ViewStruct | undefined>(`master ${master.url} with backup ${backup?.url ?? 'none'}`, async () => {
      const v = await view()
      if (v.master !== master.url || v.backup !== (backup?.url ?? '')) return undefined
      const s = await status(master)
      return s.role === 'master' && s.confirmed_view === v.number ? v : undefined
    })
  }

  /** A coordinator and `count` servers, each joined before the next starts (so the first is master, the second backup). */
  async function cluster(count: number): Promise<Proc[]> {
    coordinator = await harness.coordinator()
    const servers: Proc[] = []
    for (let i = 0; i < count; i++) {
      servers.push(await harness.server(coordinator.url))
      await waitFor(`server ${i} known`, async () => {
        const v = await view()
        return [v.master, v.backup].includes(servers[i].url) || i > 1
      })
    }
    await settled(servers[0], servers[1])
    return servers
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close()
    await harness.cleanup()
  })

  it('serves put, get and append through the master, with a backup added later', async () => {
    const [s1] = await cluster(1)
    expect(await harness.call(s1.url, 'put', 'a', '1')).to.equal('OK')
    expect(await harness.call(s1.url, 'append', 'a', '2')).to.equal(2)
    expect(await harness.call(s1.url, 'append', 'fresh', 'x', 'before-backup')).to.equal(1) // a missing key is created
    expect(await harness.call(s1.url, 'get', 'a')).to.equal('12')
    expect((await harness.fault(s1.url, 'get', 'missing')).faultString).to.match(/^ErrNoKey/)

    const s2 = await harness.server(coordinator.url)
    await settled(s1, s2)
    expect((await status(s2)).keys).to.equal(2) // the whole state was copied before the master acked
    expect(await harness.call(s1.url, 'append', 'a', '3')).to.equal(3)
    expect(await harness.call(s1.url, 'put', 'b', 'two words')).to.equal('OK')
    expect(await harness.call(new URL('/RPC2', s1.url).toString(), 'get', 'a')).to.equal('123')
    const [m, b] = await Promise.all([status(s1), status(s2)])
    expect(b.role).to.equal('backup')
    expect(b.digest).to.equal(m.digest)

    // The request-id table came over in the state copy: a retry on the new master changes nothing.
    await harness.kill(s1)
    await waitFor('s2 master', async () => (await status(s2)).role === 'master')
    expect(await harness.call(s2.url, 'append', 'fresh', 'x', 'before-backup')).to.equal(1)
    expect(await harness.call(s2.url, 'get', 'fresh')).to.equal('x')
    expect(await harness.call(s2.url, 'get', 'a')).to.equal('123')
  })

  it('refuses clients on the backup and on an idle server with ErrWrongServer', async () => {
    const [s1, s2, s3] = await cluster(3)
    await harness.call(s1.url, 'put', 'k', 'v')
    for (const other of [s2, s3]) {
      for (const [method, params] of [
        ['get', ['k']],
        ['put', ['k', 'w']],
        ['append', ['k', 'w', 'id-1']],
      ] as const) {
        const fault = await harness.fault(other.url, method, ...params)
        expect(fault.faultString, `${method} on ${other.url}`).to.match(/^ErrWrongServer/)
      }
    }
    expect(await harness.call(s1.url, 'get', 'k')).to.equal('v')
  })

  it('fails over to the backup, with every key, within 2 s of the master being SIGKILLed', async () => {
    const [s1, s2] = await cluster(2)
    const keys = Array.from({length: 40}, (_, i) => `key-${i}`)
    for (const key of keys) await harness.call(s1.url, 'put', key, `value of ${key}`)

    const killedAt = Date.now()
    await harness.kill(s1)
    const c = client()
    expect(await c.get('key-0')).to.equal('value of key-0')
    const failoverMs = Date.now() - killedAt
    expect(failoverMs, 'failover time').to.be.below(2000)

    expect(await harness.call(coordinator.url, 'master')).to.equal(s2.url)
    for (const key of keys) expect(await harness.call(s2.url, 'get', key)).to.equal(`value of ${key}`)
  })

  it('accepts a put right after the backup fails and right after the master fails', async () => {
    const [s1, s2, s3] = await cluster(3)
    const c = client()
    await c.put('before', '0')

    await harness.kill(s2)
    await c.put('after-backup-failure', '1')
    await settled(s1, s3)

    await harness.kill(s1)
    await c.put('after-master-failure', '2')
    expect(await harness.call(coordinator.url, 'master')).to.equal(s3.url)
    expect(await c.get('before')).to.equal('0')
    expect(await c.get('after-backup-failure')).to.equal('1')
    expect(await c.get('after-master-failure')).to.equal('2')
  })

  it('orders concurrent appends from 3 clients identically on master and backup, each once', async () => {
    const [s1, s2] = await cluster(2)
    const perClient = 25
    await Promise.all(
      [0, 1, 2].map(async (n) => {
        const c = client()
        for (let i = 0; i < perClient; i++) await c.append('log', `c${n}.${i};`)
      }),
    )
    const value = (await harness.call(s1.url, 'get', 'log')) as string
    const elements = value.split(';').filter(Boolean)
    const expected = [0, 1, 2].flatMap((n) => Array.from({length: perClient}, (_, i) => `c${n}.${i}`))
    expect([...elements].sort()).to.deep.equal([...expected].sort())

    const [m, b] = await Promise.all([status(s1), status(s2)])
    expect(b.digest, 'backup digest').to.equal(m.digest)
    // And read the backup's copy itself: kill the master, read from the new one.
    await harness.kill(s1)
    expect(await client().get('log')).to.equal(value)
  })

  it('applies 100 appends retried with the same request ids once each, across a failover too', async () => {
    const [s1, s2] = await cluster(2)
    const ids = Array.from({length: 100}, (_, i) => `req-${i}`)
    const first: unknown[] = []
    for (const [i, id] of ids.entries()) {
      // The original and its retry race each other; both must get the one reply.
      const [a, b] = await Promise.all([harness.call(s1.url, 'append', 'k', `${i},`, id), harness.call(s1.url, 'append', 'k', `${i},`, id)])
      expect(b).to.equal(a)
      first.push(a)
    }
    const expected = ids.map((_, i) => `${i},`).join('')
    for (const [i, id] of ids.entries()) expect(await harness.call(s1.url, 'append', 'k', `${i},`, id)).to.equal(first[i])
    expect(await harness.call(s1.url, 'get', 'k')).to.equal(expected)

    await harness.kill(s1)
    await waitFor('s2 master', async () => (await status(s2)).role === 'master')
    for (const [i, id] of ids.entries()) expect(await harness.call(s2.url, 'append', 'k', `${i},`, id)).to.equal(first[i])
    expect(await harness.call(s2.url, 'get', 'k')).to.equal(expected)
  })

  it('never serves a stale read from a master that was replaced while cut off from the coordinator', async () => {
    coordinator = await harness.coordinator()
    // s1 pings only when the test ticks it: stopping the ticks cuts it off from the coordinator.
    const s1 = await harness.server(coordinator.url, '--tick-ms', '0')
    await harness.call(s1.url, 'tick')
    const s2 = await harness.server(coordinator.url)
    await waitFor('s1 master with backup s2', async () => {
      await harness.call(s1.url, 'tick')
      const v = await view()
      return v.backup === s2.url && (await status(s1)).view.number === v.number
    })
    await harness.call(s1.url, 'tick') // acks
    await harness.call(s1.url, 'put', 'x', 'old')

    await waitFor('s2 master', async () => (await status(s2)).role === 'master')
    await client().put('x', 'new')
    expect((await status(s1)).role, 's1 still believes').to.equal('master')
    expect((await harness.fault(s1.url, 'get', 'x')).faultString).to.match(/^ErrWrongServer/)
    expect((await harness.fault(s1.url, 'put', 'x', 'lost')).faultString).to.match(/^ErrWrongServer/)
    expect(await client().get('x')).to.equal('new')
  })

  it('answers unknown methods, wrong types and garbage bodies with faults, and keeps serving', async () => {
    const [s1] = await cluster(1)
    expect((await harness.fault(s1.url, 'delete', 'k')).faultCode).to.equal(-32601)
    expect((await harness.fault(s1.url, 'put', 1, 2)).faultCode).to.equal(-32602)
    expect((await harness.fault(s1.url, 'put', 'k')).faultCode).to.equal(-32602)
    expect((await harness.fault(s1.url, 'get', ['k'])).faultCode).to.equal(-32602)
    expect((await harness.fault(s1.url, 'append', 'k', 'v', 7)).faultCode).to.equal(-32602)
    expect((await harness.fault(s1.url, 'put_backup', {view: 'x'})).faultCode).to.equal(-32602)
    expect((await harness.fault(s1.url, 'put_backup', {view: 1, from: 'me', op: 'sync', data: 'no'})).faultCode).to.equal(-32602)
    const stranger = await harness.fault(s1.url, 'put_backup', {view: 1, from: 'someone', op: 'put', key: 'k', value: 'v'})
    expect(stranger.faultString).to.match(/^ErrWrongServer/)

    for (const body of ['garbage', '<methodCall><methodName>put', '<?xml version="1.0"?><methodCall><params/></methodCall>', '\u0000\u00ff'.repeat(500)]) {
      const response = await fetch(s1.url, {method: 'POST', body, headers: {'Content-Type': 'text/xml'}})
      expect(response.status).to.equal(200)
      expect(await response.text()).to.match(/<fault>[\s\S]*-32700/)
    }
    expect((await fetch(s1.url)).status).to.equal(405)
    expect((await fetch(new URL('/elsewhere', s1.url), {method: 'POST', body: 'x'})).status).to.equal(404)
    expect(await harness.call(s1.url, 'put', 'k', 'still here')).to.equal('OK')
    expect(await harness.call(s1.url, 'get', 'k')).to.equal('still here')
    expect(await harness.call(coordinator.url, 'master')).to.equal(s1.url)
  })
})
