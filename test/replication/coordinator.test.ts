import {connect} from 'node:net'

import {expect} from 'chai'

import {Harness, type ViewStruct} from './helpers.js'

// The view service as a black box: a real coordinator process under
// --tick-ms 0, driven by ping and tick calls from the xmlrpc package's client.
describe('replication coordinator (view service over XML-RPC)', function () {
  this.timeout(30_000)
  const DEAD = 3
  const harness = new Harness()
  let url: string

  const ping = async (viewnum: number, name: string) => (await harness.call(url, 'ping', viewnum, name)) as ViewStruct
  const view = async () => (await harness.call(url, 'view')) as ViewStruct
  const tick = async (times = 1) => {
    for (let i = 0; i < times; i++) await harness.call(url, 'tick')
  }
  /** One tick of time in which the named servers ping the given numbers. */
  const round = async (pings: [number, string][]) => {
    for (const [n, name] of pings) await ping(n, name)
    await tick()
  }

  beforeEach(async () => {
    url = (await harness.coordinator('--tick-ms', '0', '--dead-pings', String(DEAD))).url
  })
  afterEach(() => harness.cleanup())

  /** s1 master acked in view 1, s2 backup acked in view 2. */
  async function masterAndBackup(): Promise<void> {
    await ping(0, 's1')
    await ping(1, 's1')
    expect(await ping(0, 's2')).to.deep.equal({number: 2, master: 's1', backup: 's2'})
    await ping(2, 's1')
    await ping(2, 's2')
  }

  it('names no master before any ping', async () => {
    expect(await harness.call(url, 'master')).to.equal('')
    expect(await view()).to.deep.equal({number: 0, master: '', backup: ''})
    await tick(DEAD + 1)
    expect(await view()).to.deep.equal({number: 0, master: '', backup: ''})
  })

  it('makes the first pinging server master of view 1, on / and on /RPC2', async () => {
    expect(await ping(0, 's1')).to.deep.equal({number: 1, master: 's1', backup: ''})
    expect(await harness.call(url, 'master')).to.equal('s1')
    expect(await harness.call(new URL('/RPC2', url).toString(), 'view')).to.deep.equal({number: 1, master: 's1', backup: ''})
  })

  it('makes the next server the first backup in view 2 once the master acked view 1', async () => {
    await ping(0, 's1')
    expect(await ping(0, 's2')).to.deep.equal({number: 1, master: 's1', backup: ''}) // view 1 not acked yet
    await ping(1, 's1')
    expect(await ping(0, 's2')).to.deep.equal({number: 2, master: 's1', backup: 's2'})
  })

  it('lets the backup take over when the master stops pinging', async () => {
    await masterAndBackup()
    for (let i = 0; i < DEAD - 1; i++) await round([[2, 's2']])
    expect((await view()).number).to.equal(2) // not dead yet
    await round([[2, 's2']])
    expect(await view()).to.deep.equal({number: 3, master: 's2', backup: ''})
  })

  it('makes a restarted server (pinging 0) the backup', async () => {
    await masterAndBackup()
    for (let i = 0; i < DEAD; i++) await round([[2, 's2']])
    expect(await ping(3, 's2')).to.deep.equal({number: 3, master: 's2', backup: ''})
    expect(await ping(0, 's1')).to.deep.equal({number: 4, master: 's2', backup: 's1'})
  })

  it('makes an idle third server the backup when the master fails, in one change', async () => {
    await masterAndBackup()
    await ping(0, 's3')
    expect((await view()).number).to.equal(2) // s3 idles while there is a backup
    for (let i = 0; i < DEAD; i++) await round([[2, 's2'], [2, 's3']])
    expect(await view()).to.deep.equal({number: 3, master: 's2', backup: 's3'})
  })

  it('treats a restarted master (pinging 0) as dead', async () => {
    await masterAndBackup()
    const next = await ping(0, 's1')
    expect(next.master).to.equal('s2')
    expect(next).to.deep.equal({number: 3, master: 's2', backup: 's1'})
    // The restarted server's later pings of the new number make it a backup, never master again.
    await ping(3, 's2')
    await ping(3, 's1')
    expect(await harness.call(url, 'master')).to.equal('s2')
  })

  it('removes a dead backup from the view', async () => {
    await masterAndBackup()
    for (let i = 0; i < DEAD; i++) await round([[2, 's1']])
    expect(await view()).to.deep.equal({number: 3, master: 's1', backup: ''})
  })

  it('waits for the master to acknowledge before changing the view, even when the master is dead', async () => {
    await ping(0, 's1')
    await ping(1, 's1')
    expect(await ping(0, 's2')).to.deep.equal({number: 2, master: 's1', backup: 's2'})
    // s1 never acks view 2 and stops pinging; s2 and a newcomer keep pinging.
    await ping(0, 's3')
    for (let i = 0; i < DEAD * 3; i++) await round([[2, 's2'], [2, 's3']])
    expect(await view()).to.deep.equal({number: 2, master: 's1', backup: 's2'})
  })

  it('never makes a server that was never in the view master', async () => {
    await ping(0, 's1')
    await ping(1, 's1')
    for (let i = 0; i < DEAD; i++) await tick() // s1, master with no backup, dies
    for (let i = 0; i < DEAD * 2; i++) await round([[0, 's2']])
    expect(await view()).to.deep.equal({number: 1, master: 's1', backup: ''})
    expect(await harness.call(url, 'master')).to.equal('s1')
  })

  it('never makes an idle server master when master and backup die together', async () => {
    await masterAndBackup()
    await ping(0, 's3')
    for (let i = 0; i < DEAD * 2; i++) await round([[0, 's3']])
    const after = await view()
    expect(after.master).to.not.equal('s3')
    expect(after).to.deep.equal({number: 2, master: 's1', backup: 's2'})
  })

  it('adds exactly 1 to the view number at every change', async () => {
    const numbers: number[] = []
    numbers.push((await ping(0, 's1')).number)
    await ping(1, 's1')
    numbers.push((await ping(0, 's2')).number)
    await ping(2, 's1')
    numbers.push((await ping(0, 's2')).number) // backup restarted: replaced by itself, fresh
    await ping(3, 's1')
    for (let i = 0; i < DEAD; i++) await round([[3, 's2']])
    numbers.push((await view()).number)
    expect(numbers).to.deep.equal([1, 2, 3, 4])
    expect(await view()).to.deep.equal({number: 4, master: 's2', backup: ''})
  })

  // The classic view service's Test1, step for step: each `time.Sleep(PingInterval)`
  // of the original is one tick(), and each loop runs at most as many rounds.
  it('passes the classic view service Test1 sequence from start to end', async () => {
    const [ck1, ck2, ck3] = ['ck1', 'ck2', 'ck3']
    /** Runs `step` once per tick, up to `rounds` times, until it returns true. */
    const until = async (rounds: number, step: () => Promise<boolean>) => {
      for (let i = 0; i < rounds; i++) {
        if (await step()) return
        await tick()
      }
    }
    const check = async (master: string, backup: string, number: number) => {
      expect(await view()).to.deep.equal({number, master, backup})
      expect(await harness.call(url, 'master')).to.equal(master)
    }

    expect(await harness.call(url, 'master'), 'a master too soon').to.equal('')

    // First master.
    await until(DEAD * 2, async () => (await ping(0, ck1)).master === ck1)
    await check(ck1, '', 1)

    // First backup.
    let vx = await view()
    await until(DEAD * 2, async () => {
      await ping(1, ck1)
      return (await ping(0, ck2)).backup === ck2
    })
    await check(ck1, ck2, vx.number + 1)

    // The backup takes over when the master fails.
    await ping(2, ck1)
    vx = await ping(2, ck2)
    await until(DEAD * 2, async () => {
      const v = await ping(vx.number, ck2)
      return v.master === ck2 && v.backup === ''
    })
    await check(ck2, '', vx.number + 1)

    // A restarted server becomes backup.
    vx = await view()
    await ping(vx.number, ck2)
    await until(DEAD * 2, async () => {
      await ping(0, ck1)
      const v = await ping(vx.number, ck2)
      return v.master === ck2 && v.backup === ck1
    })
    await check(ck2, ck1, vx.number + 1)

    // The master fails: the backup takes over and an idle third server becomes
    // backup, in one change. ck3 goes on pinging 0 after it is named: it has
    // not heard of the view yet, which is no restart.
    vx = await view()
    await ping(vx.number, ck2)
    await until(DEAD * 2, async () => {
      await ping(0, ck3)
      const v = await ping(vx.number, ck1)
      if (v.master === ck1 && v.backup === ck3) return true
      vx = v
      return false
    })
    await check(ck1, ck3, vx.number + 1)

    // A master that restarts (pings 0) is treated as dead even though it pings.
    vx = await view()
    await ping(vx.number, ck1)
    await until(DEAD * 2, async () => {
      await ping(0, ck1)
      await ping(vx.number, ck3)
      return (await view()).master !== ck1
    })
    expect((await view()).master, 'the backup becomes master within a few ticks').to.equal(ck3)

    // A dead backup is removed from the view.
    for (let i = 0; i < DEAD * 3; i++) {
      await ping((await view()).number, ck3)
      await tick()
    }
    const alone = await view()
    expect([alone.master, alone.backup]).to.deep.equal([ck3, ''])

    // The service waits for the master's ack before the next change.
    vx = await view()
    await until(DEAD * 3, async () => {
      await ping(0, ck1)
      await ping(vx.number, ck3)
      return (await view()).number > vx.number
    })
    await check(ck3, ck1, vx.number + 1)
    const vy = await view()
    await until(DEAD * 3, async () => (await ping(vy.number, ck1)).number > vy.number)
    await check(ck3, ck1, vy.number) // ck3 died without acking: ck1 is not promoted

    // An uninitialised server cannot become master.
    for (let i = 0; i < DEAD * 2; i++) {
      const v = await view()
      await ping(v.number, ck1)
      await ping(0, ck2)
      await ping(v.number, ck3)
      await tick()
    }
    for (let i = 0; i < DEAD * 2; i++) {
      await ping(0, ck2)
      await tick()
    }
    expect((await view()).master).to.not.equal(ck2)
  })

  it('answers wrong argument types and unknown methods with faults, and keeps running', async () => {
    expect((await harness.fault(url, 'ping', 'one', 's1')).faultCode).to.equal(-32602)
    expect((await harness.fault(url, 'ping', 0, 5)).faultCode).to.equal(-32602)
    expect((await harness.fault(url, 'ping', 0)).faultCode).to.equal(-32602)
    expect((await harness.fault(url, 'ping', 0, '')).faultCode).to.equal(-32602)
    expect((await harness.fault(url, 'tick', 1)).faultCode).to.equal(-32602)
    const unknown = await harness.fault(url, 'promote', 's1')
    expect(unknown.faultCode).to.equal(-32601)
    expect(unknown.faultString).to.match(/promote/)
    expect(await ping(0, 's1')).to.deep.equal({number: 1, master: 's1', backup: ''})
  })

  it('survives garbage on its socket and in request bodies', async () => {
    const {hostname, port} = new URL(url)
    await new Promise<void>((resolve) => {
      const socket = connect(Number(port), hostname, () => socket.end(Buffer.from([0, 255, 13, 10, 13, 10, 1, 2, 3])))
      socket.on('error', () => resolve())
      socket.on('close', () => resolve())
      socket.resume()
    })
    const response = await fetch(url, {method: 'POST', body: '<methodCall><methodName>ping</methodName><params><param><value><int>x</int>'})
    expect(await response.text()).to.match(/<fault>[\s\S]*-32700/)
    expect(await ping(0, 's1')).to.deep.equal({number: 1, master: 's1', backup: ''})
  })
})
