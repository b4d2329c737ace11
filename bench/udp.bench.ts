// Reliable UDP over loopback: messages/s and MB/s with 1,200-byte payloads at
// 0% and 10% injected loss (10% of data packets and 10% of acknowledgements,
// dropped at the receiver), beside the same transfer over one plain TCP
// connection. The receiver runs in its own process, as it would in use, so
// sender and receiver each get a core. Bounded: a fixed message count per
// run and a hard time limit; never exits non-zero on a number.
import {spawn, type ChildProcess} from 'node:child_process'
import {createServer, connect} from 'node:net'
import {performance} from 'node:perf_hooks'
import {fileURLToPath} from 'node:url'

import {ReliableSocket} from '../src/net/reliable-udp.js'

const PAYLOAD = 1200
const COUNT = {clean: 200_000, lossy: 50_000}
/** sendTo calls kept outstanding; more than the window, so the window is always full. */
const OUTSTANDING = 2048
const LIMIT_MS = 60_000

const role = process.argv[2]
if (role === 'udp-receiver') await udpReceiver(Number(process.argv[3]), Number(process.argv[4]))
else if (role === 'tcp-receiver') await tcpReceiver(Number(process.argv[3]))
else await main()

async function main(): Promise<void> {
  console.log(`reliable UDP vs TCP over loopback, ${PAYLOAD}-byte payloads`)
  const rows: string[][] = [['transport', 'loss', 'messages', 'seconds', 'msgs/s', 'MB/s', 'retransmits']]
  for (const [loss, count] of [
    [0, COUNT.clean],
    [0.1, COUNT.lossy],
  ] as const) {
    try {
      const udp = await runUdp(count, loss)
      rows.push(['reliable-udp', `${loss * 100}%`, String(count), udp.seconds.toFixed(2), rate(count / udp.seconds), rate((count * PAYLOAD) / udp.seconds / 1e6, 1), String(udp.retransmits)])
    } catch (error) {
      rows.push(['reliable-udp', `${loss * 100}%`, String(count), '-', `failed: ${(error as Error).message}`, '', ''])
    }
  }
  let tcpRate = 0
  try {
    const tcp = await runTcp(COUNT.clean)
    tcpRate = COUNT.clean / tcp
    rows.push(['tcp', '0%', String(COUNT.clean), tcp.toFixed(2), rate(tcpRate), rate((COUNT.clean * PAYLOAD) / tcp / 1e6, 1), '-'])
  } catch (error) {
    rows.push(['tcp', '0%', String(COUNT.clean), '-', `failed: ${(error as Error).message}`, '', ''])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)))
  for (const row of rows) console.log(row.map((cell, i) => cell.padStart(widths[i])).join('  '))
  const clean = rows.find((row) => row[0] === 'reliable-udp' && row[1] === '0%')
  const udpRate = Number(clean?.[4]?.replaceAll(',', ''))
  if (udpRate && tcpRate) console.log(`ratio reliable-udp/tcp at 0% loss: ${(udpRate / tcpRate).toFixed(2)} (target: >= 50,000 msgs/s for reliable-udp)`)
}

function rate(value: number, digits = 0): string {
  return value.toLocaleString('en-US', {maximumFractionDigits: digits, minimumFractionDigits: digits})
}

/** Starts this file in another role; resolves with the child and the first line it prints (its port). */
function child(args: string[]): Promise<{proc: ChildProcess; port: number; done: Promise<string>; report: Promise<string>}> {
  const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], {stdio: ['ignore', 'pipe', 'inherit']})
  const killer = setTimeout(() => proc.kill('SIGKILL'), LIMIT_MS)
  let out = ''
  let reported: (line: string) => void = () => {}
  const report = new Promise<string>((resolve) => (reported = resolve))
  const done = new Promise<string>((resolve) =>
    proc.on('close', () => {
      clearTimeout(killer)
      resolve(out)
    }),
  )
  return new Promise((resolve, reject) => {
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      const first = out === ''
      out += chunk
      if (first) resolve({proc, port: Number.parseInt(out, 10), done, report})
      const lines = out.split('\n')
      if (lines.length > 2) reported(lines[1])
    })
    proc.on('error', reject)
    proc.on('close', (code) => reject(new Error(`receiver exited ${code}`)))
  })
}

async function runUdp(count: number, loss: number): Promise<{seconds: number; retransmits: number}> {
  const receiver = await child(['udp-receiver', String(count), String(loss)])
  const socket = new ReliableSocket()
  try {
    await socket.bind(0, '127.0.0.1')
    const payload = Buffer.alloc(PAYLOAD, 0x61)
    let next = 0
    const start = performance.now()
    const worker = async (): Promise<void> => {
      while (next < count) {
        const message = Buffer.from(payload)
        message.writeUInt32BE(next++, 0)
        await socket.sendTo(message, receiver.port, '127.0.0.1', {timeoutMs: LIMIT_MS})
      }
    }
    await Promise.all(Array.from({length: OUTSTANDING}, worker))
    const seconds = (performance.now() - start) / 1000
    const report = await Promise.race([receiver.report, receiver.done])
    if (!report.includes(`ok ${count}`)) throw new Error(`receiver said: ${report.trim().split('\n').pop() || 'nothing'}`)
    return {seconds, retransmits: socket.stats.retransmits}
  } finally {
    receiver.proc.kill()
    await socket.close()
  }
}

async function udpReceiver(count: number, loss: number): Promise<void> {
  const socket = new ReliableSocket(loss > 0 ? {loss: {drop: loss, seed: 42}} : {})
  const {port} = await socket.bind(0, '127.0.0.1')
  process.stdout.write(`${port}\n`)
  const seen = new Uint8Array(count)
  let distinct = 0
  let twice = 0
  // Once every message is in, report, but keep the socket open (and keep
  // reading): acknowledgements of the last messages may have been lost, and
  // the sender's retransmissions must still be acknowledged. The sender kills
  // this process when its last send has resolved.
  for await (const {data} of socket) {
    const index = data.readUInt32BE(0)
    if (seen[index]) twice++
    seen[index] = 1
    if (++distinct === count) process.stdout.write(twice === 0 ? `ok ${count}\n` : `delivered ${twice} twice\n`)
  }
}

async function runTcp(count: number): Promise<number> {
  const receiver = await child(['tcp-receiver', String(count)])
  const socket = connect(receiver.port, '127.0.0.1')
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    socket.setNoDelay(true)
    const start = performance.now()
    const payload = Buffer.alloc(PAYLOAD, 0x61)
    for (let i = 0; i < count; i++) {
      if (!socket.write(payload)) await new Promise((resolve) => socket.once('drain', resolve))
    }
    await new Promise<void>((resolve, reject) => socket.once('data', () => resolve()).once('error', reject))
    const seconds = (performance.now() - start) / 1000
    socket.end()
    const report = await receiver.done
    if (!report.includes(`ok ${count}`)) throw new Error(`receiver said: ${report.trim()}`)
    return seconds
  } finally {
    socket.destroy()
    receiver.proc.kill()
  }
}

async function tcpReceiver(count: number): Promise<void> {
  const server = createServer((conn) => {
    let bytes = 0
    // The reply byte, once every byte is in, is what stops the sender's clock.
    conn.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes === count * PAYLOAD) conn.write('k')
    })
    conn.on('end', () => {
      process.stdout.write(bytes === count * PAYLOAD ? `ok ${count}\n` : `got ${bytes} bytes\n`)
      conn.end()
      server.close()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`)
}
