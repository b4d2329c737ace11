import {expect} from 'chai'
import {appendFileSync, existsSync, readFileSync, rmSync} from 'node:fs'

import {DnsServer} from '../../src/dns/server.js'
import {decodeMessage, makeQuery, Rcode, type Message, type SoaData} from '../../src/dns/wire.js'
import {copyFixtures, encodeUpdate, join, spawnServe, udpAsk, udpExchange, type ServeProcess, type UpdateRecord} from './helpers.js'

let nextId = 100
async function sendUpdate(port: number, updates: UpdateRecord[], options: {from?: string; zone?: string; prerequisites?: UpdateRecord[]} = {}): Promise<Message> {
  const bytes = encodeUpdate(nextId++, options.zone ?? 'disk.test', updates, options.prerequisites)
  const reply = await udpExchange('127.0.0.1', port, bytes, {from: options.from})
  if (!reply) throw new Error('no reply to the update')
  return decodeMessage(reply)
}

async function lookup(port: number, name: string, type = 'A'): Promise<Message> {
  return udpAsk('127.0.0.1', port, makeQuery(nextId++, name, type, {rd: false}))
}

const datas = (reply: Message): unknown[] => reply.answers.map((rr) => rr.data)

describe('dns dynamic updates (RFC 2136)', function () {
  this.timeout(30_000)
  let dir: string
  let server: DnsServer

  beforeEach(async () => {
    dir = copyFixtures()
    server = new DnsServer({port: 0, zoneFiles: [join(dir, 'disk.test.zone')], allowUpdate: ['127.0.0.1/32']})
    await server.start()
  })
  afterEach(async () => {
    await server.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  it('adds records that are served at once, journals them with fsync, and bumps the SOA serial', async () => {
    // asked before, so the packet cache holds the NXDOMAIN the update must replace
    expect((await lookup(server.port, 'new.disk.test')).rcode).to.equal(Rcode.NXDOMAIN)
    const reply = await sendUpdate(server.port, [
      {name: 'new.disk.test', type: 'A', klass: 'IN', ttl: 120, data: '10.9.9.9'},
      {name: 'new.disk.test', type: 'TXT', klass: 'IN', ttl: 120, data: ['hello']},
    ])
    expect(reply.rcode).to.equal(Rcode.NOERROR)
    expect(reply.opcode).to.equal(5)
    const a = await lookup(server.port, 'new.disk.test')
    expect(a.answers.map((rr) => [rr.ttl, rr.data])).to.deep.equal([[120, '10.9.9.9']])
    expect(datas(await lookup(server.port, 'new.disk.test', 'TXT'))).to.deep.equal([['hello']])
    const soa = await lookup(server.port, 'disk.test', 'SOA')
    expect((soa.answers[0].data as SoaData).serial).to.equal(2024010102)
    const journal = readFileSync(join(dir, 'disk.test.zone.jnl'), 'utf8')
    expect(journal.trim().split('\n')).to.have.length(1)
    expect(journal).to.include('10.9.9.9')
  })

  it('deletes one record (class NONE), an RRset (class ANY, type), and every RRset at a name (class ANY, type ANY)', async () => {
    const add = await sendUpdate(server.port, [
      {name: 'multi.disk.test', type: 'A', klass: 'IN', ttl: 60, data: '10.5.0.1'},
      {name: 'multi.disk.test', type: 'A', klass: 'IN', ttl: 60, data: '10.5.0.2'},
      {name: 'multi.disk.test', type: 'TXT', klass: 'IN', ttl: 60, data: ['t']},
    ])
    expect(add.rcode).to.equal(Rcode.NOERROR)

    const one = await sendUpdate(server.port, [{name: 'multi.disk.test', type: 'A', klass: 'NONE', ttl: 0, data: '10.5.0.1'}])
    expect(one.rcode).to.equal(Rcode.NOERROR)
    expect(datas(await lookup(server.port, 'multi.disk.test'))).to.deep.equal(['10.5.0.2'])

    const rrset = await sendUpdate(server.port, [{name: 'multi.disk.test', type: 'A', klass: 'ANY', ttl: 0}])
    expect(rrset.rcode).to.equal(Rcode.NOERROR)
    const gone = await lookup(server.port, 'multi.disk.test')
    expect(gone.rcode).to.equal(Rcode.NOERROR) // NODATA: the TXT is still there
    expect(gone.answers).to.have.length(0)
    expect(datas(await lookup(server.port, 'multi.disk.test', 'TXT'))).to.deep.equal([['t']])

    const name = await sendUpdate(server.port, [{name: 'router.disk.test', type: 'ANY', klass: 'ANY', ttl: 0}])
    expect(name.rcode).to.equal(Rcode.NOERROR)
    expect((await lookup(server.port, 'router.disk.test')).rcode).to.equal(Rcode.NXDOMAIN)
    expect((await lookup(server.port, 'router.disk.test', 'AAAA')).rcode).to.equal(Rcode.NXDOMAIN)
    // the CNAMEs that pointed at it now end nowhere
    const www = await lookup(server.port, 'www.disk.test')
    expect(www.rcode).to.equal(Rcode.NXDOMAIN)
    expect(www.answers.map((rr) => rr.type)).to.deep.equal(['CNAME'])
  })

  it('never deletes the apex SOA or NS, and checks prerequisites', async () => {
    const apex = await sendUpdate(server.port, [{name: 'disk.test', type: 'ANY', klass: 'ANY', ttl: 0}])
    expect(apex.rcode).to.equal(Rcode.NOERROR)
    expect((await lookup(server.port, 'disk.test', 'SOA')).answers).to.have.length(1)
    expect((await lookup(server.port, 'disk.test', 'NS')).answers).to.have.length(1)

    const add = {name: 'guarded.disk.test', type: 'A', klass: 'IN' as const, ttl: 60, data: '10.7.0.1'}
    const notInUse = [{name: 'router.disk.test', type: 'ANY', klass: 'NONE' as const, ttl: 0}]
    expect((await sendUpdate(server.port, [add], {prerequisites: notInUse})).rcode).to.equal(Rcode.YXDOMAIN)
    const rrsetExists = [{name: 'router.disk.test', type: 'MX', klass: 'ANY' as const, ttl: 0}]
    expect((await sendUpdate(server.port, [add], {prerequisites: rrsetExists})).rcode).to.equal(Rcode.NXRRSET)
    expect((await lookup(server.port, 'guarded.disk.test')).rcode).to.equal(Rcode.NXDOMAIN)
    const valueMatches = [{name: 'router.disk.test', type: 'A', klass: 'IN' as const, ttl: 0, data: '10.0.0.1'}]
    expect((await sendUpdate(server.port, [add], {prerequisites: valueMatches})).rcode).to.equal(Rcode.NOERROR)
    expect(datas(await lookup(server.port, 'guarded.disk.test'))).to.deep.equal(['10.7.0.1'])
  })

  it('answers NOTAUTH for a zone it does not hold and NOTZONE for a name outside the zone', async () => {
    const other = await sendUpdate(server.port, [{name: 'x.other.test', type: 'A', klass: 'IN', ttl: 60, data: '10.0.0.1'}], {zone: 'other.test'})
    expect(other.rcode).to.equal(Rcode.NOTAUTH)
    const outside = await sendUpdate(server.port, [{name: 'x.other.test', type: 'A', klass: 'IN', ttl: 60, data: '10.0.0.1'}])
    expect(outside.rcode).to.equal(Rcode.NOTZONE)
  })

  it('refuses an update from an address outside --allow-update, and changes nothing', async () => {
    const reply = await sendUpdate(server.port, [{name: 'sneaky.disk.test', type: 'A', klass: 'IN', ttl: 60, data: '10.6.6.6'}], {from: '127.0.0.5'})
    expect(reply.rcode).to.equal(Rcode.REFUSED)
    expect((await lookup(server.port, 'sneaky.disk.test')).rcode).to.equal(Rcode.NXDOMAIN)
    expect(existsSync(join(dir, 'disk.test.zone.jnl'))).to.equal(false)
    expect(server.stats.refusedUpdates).to.equal(1)
  })

  it('refuses every update when no --allow-update is given', async () => {
    const closed = new DnsServer({port: 0, zoneFiles: [join(dir, 'lab.test.zone')]})
    await closed.start()
    try {
      const reply = await sendUpdate(closed.port, [{name: 'x.lab.test', type: 'A', klass: 'IN', ttl: 60, data: '10.0.0.1'}], {zone: 'lab.test'})
      expect(reply.rcode).to.equal(Rcode.REFUSED)
    } finally {
      await closed.stop()
    }
  })

  it('replays the journal at load and ignores a torn last line (a write that was never acknowledged)', async () => {
    await sendUpdate(server.port, [{name: 'kept.disk.test', type: 'A', klass: 'IN', ttl: 60, data: '10.8.0.1'}])
    await server.stop()
    appendFileSync(join(dir, 'disk.test.zone.jnl'), '{"v":1,"edits":[{"op":"add","rr":{"name":"torn')
    server = new DnsServer({port: 0, zoneFiles: [join(dir, 'disk.test.zone')], allowUpdate: ['127.0.0.1/32']})
    await server.start()
    expect(datas(await lookup(server.port, 'kept.disk.test'))).to.deep.equal(['10.8.0.1'])
    await sendUpdate(server.port, [{name: 'after.disk.test', type: 'A', klass: 'IN', ttl: 60, data: '10.8.0.2'}])
    expect(readFileSync(join(dir, 'disk.test.zone.jnl'), 'utf8').trim().split('\n')).to.have.length(2)
  })
})

describe('dns serve: an update survives a restart of the server process', function () {
  this.timeout(60_000)
  let dir: string
  let serve: ServeProcess | undefined

  before(() => {
    dir = copyFixtures()
  })
  afterEach(async () => {
    await serve?.stop()
    serve = undefined
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('serves an added record at once and again after SIGTERM and a fresh start', async () => {
    const args = ['--port', '0', '--zone', join(dir, 'disk.test.zone'), '--allow-update', '127.0.0.1/32']
    serve = await spawnServe(args)
    const added = await sendUpdate(serve.port, [{name: 'durable.disk.test', type: 'A', klass: 'IN', ttl: 90, data: '10.4.4.4'}])
    expect(added.rcode).to.equal(Rcode.NOERROR)
    expect(datas(await lookup(serve.port, 'durable.disk.test'))).to.deep.equal(['10.4.4.4'])
    const refused = await sendUpdate(serve.port, [{name: 'nope.disk.test', type: 'A', klass: 'IN', ttl: 90, data: '10.4.4.5'}], {from: '127.0.0.5'})
    expect(refused.rcode).to.equal(Rcode.REFUSED)
    expect(await serve.stop()).to.equal(0)
    expect(serve.stderr()).to.match(/update for disk.test from 127.0.0.1: NOERROR/)

    serve = await spawnServe(args)
    const after = await lookup(serve.port, 'durable.disk.test')
    expect(after.aa).to.equal(true)
    expect(after.answers.map((rr) => [rr.ttl, rr.data])).to.deep.equal([[90, '10.4.4.4']])
    expect((await lookup(serve.port, 'nope.disk.test')).rcode).to.equal(Rcode.NXDOMAIN)
  })
})
