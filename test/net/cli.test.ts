import {expect} from 'chai'
import type {ChildProcess} from 'node:child_process'
import {createSocket, type RemoteInfo, type Socket} from 'node:dgram'

import {collect, runCli, spawnCli, type CliResult} from '../helpers/cli.js'

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A raw dgram socket standing in for a foreign program; `onPacket` decides what to answer. */
async function foreign(onPacket: (data: Buffer, rinfo: RemoteInfo, socket: Socket) => void = () => {}): Promise<{socket: Socket; port: number; got: Buffer[]}> {
  const socket = createSocket('udp4')
  const got: Buffer[] = []
  socket.on('message', (data, rinfo) => {
    got.push(data)
    onPacket(data, rinfo, socket)
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return {socket, port: socket.address().port, got}
}

describe('net listen and net send (CLI)', function () {
  this.timeout(30_000)
  const children: ChildProcess[] = []
  const sockets: Socket[] = []

  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    for (const socket of sockets.splice(0)) socket.close()
  })

  /** Starts `net listen` on a free port; resolves once its stderr banner names the port. */
  async function listen(args: string[]): Promise<{port: number; done: Promise<CliResult>}> {
    const child = spawnCli(['net', 'listen', '--port', '0', ...args])
    children.push(child)
    let banner = ''
    child.stderr?.on('data', (chunk: Buffer) => (banner += chunk.toString()))
    const done = collect(child, {timeoutMs: 25_000})
    await until(() => /listening udp 127\.0\.0\.1:\d+/.test(banner))
    return {port: Number(/:(\d+)/.exec(banner)?.[1]), done}
  }

  it('acknowledges a foreign [0][id][payload] with exactly [1][id] from its port, again for a duplicate, and prints it once', async () => {
    const {port, done} = await listen(['--count', '2'])
    const acks: {data: Buffer; port: number}[] = []
    const raw = await foreign()
    sockets.push(raw.socket)
    raw.socket.on('message', (data, rinfo) => acks.push({data, port: rinfo.port}))
    const hello = Buffer.concat([Buffer.from([0, 0xca, 0xfe, 0xba, 0xbe]), Buffer.from('hello, world')])
    raw.socket.send(hello, port, '127.0.0.1')
    await until(() => acks.length === 1)
    raw.socket.send(hello, port, '127.0.0.1')
    await until(() => acks.length === 2)
    for (const ack of acks) {
      expect([...ack.data]).to.deep.equal([1, 0xca, 0xfe, 0xba, 0xbe])
      expect(ack.port).to.equal(port)
    }
    raw.socket.send(Buffer.from([0, 0, 0, 0, 2, 0xff, 0xfe, 0x00]), port, '127.0.0.1')
    const result = await done
    expect(result.code).to.equal(0)
    expect(result.stdout).to.equal('hello, world\nbase64://4A\n')
    expect(acks).to.have.length(3)
    expect([...acks[2].data]).to.deep.equal([1, 0, 0, 0, 2])
  })

  it('exits after --count messages sent by net send, printing only the messages on stdout', async () => {
    const {port, done} = await listen(['--count', '2'])
    expect((await runCli(['net', 'send', `127.0.0.1:${port}`, 'first'])).code).to.equal(0)
    expect((await runCli(['net', 'send', `localhost:${port}`, 'second ✓'])).code).to.equal(0)
    const result = await done
    expect(result.code).to.equal(0)
    expect(result.stdout).to.equal('first\nsecond ✓\n')
  })

  it('net send retransmits to a receiver that drops the first two packets and exits 0 on the third', async () => {
    const raw = await foreign((data, rinfo, socket) => {
      if (raw.got.length >= 3) socket.send(Buffer.from([1, ...data.subarray(1, 5)]), rinfo.port, rinfo.address)
    })
    sockets.push(raw.socket)
    const result = await runCli(['net', 'send', `127.0.0.1:${raw.port}`, 'third time lucky'], {timeoutMs: 25_000})
    expect(result.code, result.stderr).to.equal(0)
    expect(raw.got).to.have.length(3)
    expect(raw.got.every((packet) => packet.equals(raw.got[0]))).to.equal(true)
    expect(raw.got[0][0]).to.equal(0)
    expect(raw.got[0].subarray(5).toString()).to.equal('third time lucky')
  })

  it('net send exits 5 within --timeout when nothing acknowledges', async () => {
    const raw = await foreign()
    sockets.push(raw.socket)
    const start = Date.now()
    const result = await runCli(['net', 'send', `127.0.0.1:${raw.port}`, 'anyone?', '--timeout', '1500'], {timeoutMs: 20_000})
    const elapsed = Date.now() - start
    expect(result.code).to.equal(5)
    expect(result.stderr).to.match(/^Error: no acknowledgement from 127\.0\.0\.1:\d+ within 1500 ms\n$/)
    expect(elapsed).to.be.at.least(1500).and.below(10_000)
    // Sent at 0 and again after the initial 1 s RTO.
    expect(raw.got).to.have.length(2)
  })

  it('net send exits 2 for a bad address or an oversize message', async () => {
    for (const address of ['nowhere', '127.0.0.1:0', '127.0.0.1:70000', '[::1]', 'a b:9']) {
      const result = await runCli(['net', 'send', address, 'x'])
      expect(result.code, address).to.equal(2)
      expect(result.stderr).to.match(/^Error: /)
    }
    const big = await runCli(['net', 'send', '127.0.0.1:9', 'x'.repeat(65_503)])
    expect(big.code).to.equal(2)
    expect(big.stderr).to.match(/too large/)
  })

  it('net listen stops cleanly on SIGTERM', async () => {
    const {done} = await listen([])
    children[0].kill('SIGTERM')
    const result = await done
    expect(result.code).to.equal(0)
    expect(result.stdout).to.equal('')
  })
})
