// Shared pieces of the DNS tests: a port free on several loopback addresses,
// fixture copies, raw UDP/TCP exchanges, and UPDATE messages built byte by
// byte where dns-packet cannot express them (class NONE, RDLENGTH 0).
import type {ChildProcess} from 'node:child_process'
import {createSocket} from 'node:dgram'
import {copyFileSync, mkdtempSync, readdirSync} from 'node:fs'
import {createServer, Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import packet from 'dns-packet'

import {spawnCli} from '../helpers/cli.js'
import {codecs, decodeMessage, FrameReader, frame, type Message} from '../../src/dns/wire.js'

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))

/** Copies the zone fixtures to a fresh temporary folder (journals get written beside them). */
export function copyFixtures(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dns-test-'))
  for (const name of readdirSync(FIXTURES)) if (name.endsWith('.zone')) copyFileSync(join(FIXTURES, name), join(dir, name))
  return dir
}

async function canBind(host: string, port: number): Promise<boolean> {
  const udp = createSocket('udp4')
  const tcp = createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(port, host, () => resolve())
    })
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject)
      tcp.listen(port, host, () => resolve())
    })
    return true
  } catch {
    return false
  } finally {
    await new Promise<void>((resolve) => tcp.close(() => resolve()))
    try {
      udp.close()
    } catch {
      // never bound
    }
  }
}

/** A port free for UDP and TCP on every one of `hosts` (as the chain tests need: glue has no ports). */
export async function findSharedPort(hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000)
    let free = true
    for (const host of hosts) {
      if (!(await canBind(host, port))) {
        free = false
        break
      }
    }
    if (free) return port
  }
  throw new Error('no port free on all of ' + hosts.join(', '))
}

/** Sends raw bytes over UDP (from `from`, if given) and resolves with the first reply, or undefined after `timeoutMs`. */
export function udpExchange(
  host: string,
  port: number,
  bytes: Buffer,
  options: {from?: string; timeoutMs?: number} = {},
): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4')
    const timer = setTimeout(() => finish(undefined), options.timeoutMs ?? 2000)
    const finish = (reply: Buffer | undefined): void => {
      clearTimeout(timer)
      socket.close()
      resolve(reply)
    }
    socket.once('error', (error) => {
      clearTimeout(timer)
      socket.close()
      reject(error)
    })
    socket.once('message', (reply) => finish(reply))
    socket.bind(0, options.from ?? '127.0.0.1', () => socket.send(bytes, port, host))
  })
}

/** Asks over UDP and decodes the reply. */
export async function udpAsk(host: string, port: number, query: Message | Buffer, options: {from?: string} = {}): Promise<Message> {
  const bytes = Buffer.isBuffer(query) ? query : encodeQuery(query)
  const reply = await udpExchange(host, port, bytes, options)
  if (!reply) throw new Error('no UDP reply')
  return decodeMessage(reply)
}

/** Opens a TCP connection to send raw bytes and collect framed replies. */
export class TcpConversation {
  readonly socket = new Socket()
  private readonly reader = new FrameReader()
  private readonly replies: Buffer[] = []
  private waiters: Array<() => void> = []
  closed = false

  static async open(host: string, port: number): Promise<TcpConversation> {
    const conversation = new TcpConversation()
    await new Promise<void>((resolve, reject) => {
      conversation.socket.once('error', reject)
      conversation.socket.connect(port, host, () => resolve())
    })
    conversation.socket.on('error', () => undefined)
    return conversation
  }

  private constructor() {
    this.socket.on('data', (chunk) => {
      this.replies.push(...this.reader.push(chunk))
      this.wake()
    })
    this.socket.on('close', () => {
      this.closed = true
      this.wake()
    })
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const waiter of waiters) waiter()
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /** Waits until `count` replies have arrived (or the connection closed, or time ran out). */
  async waitReplies(count: number, timeoutMs = 3000): Promise<Message[]> {
    const deadline = Date.now() + timeoutMs
    while (this.replies.length < count && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now())
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.replies.map((bytes) => decodeMessage(bytes))
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Asks over a fresh TCP connection and decodes the reply. */
export async function tcpAsk(host: string, port: number, query: Message): Promise<Message> {
  const conversation = await TcpConversation.open(host, port)
  try {
    conversation.write(frame(encodeQuery(query)))
    const [reply] = await conversation.waitReplies(1)
    if (!reply) throw new Error('no TCP reply')
    return reply
  } finally {
    conversation.close()
  }
}

export function encodeQuery(query: Message): Buffer {
  return packet.encode({
    id: query.id,
    type: 'query',
    flags: (query.opcode << 11) | (query.rd ? packet.RECURSION_DESIRED : 0),
    questions: query.questions.map((q) => ({name: q.name, type: q.type, class: 'IN'}) as packet.Question),
    additionals: query.edns ? [{name: '.', type: 'OPT', udpPayloadSize: query.edns.udpPayloadSize, flags: 0, options: []} as unknown as packet.Answer] : [],
  })
}

/** One record of an UPDATE message: class IN/ANY/NONE, and data undefined for RDLENGTH 0. */
export interface UpdateRecord {
  name: string
  type: string
  klass: 'IN' | 'ANY' | 'NONE'
  ttl: number
  data?: unknown
}

const CLASS_NUMBERS = {IN: 1, NONE: 254, ANY: 255} as const
const TYPE_NUMBERS: Record<string, number> = {A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, SRV: 33, ANY: 255}

/** Encodes one record: dns-packet for the name and RDATA, our own class and, for deletes, an empty RDATA. */
function encodeUpdateRecord(rr: UpdateRecord): Buffer {
  if (rr.data === undefined) {
    const fixed = Buffer.alloc(10)
    fixed.writeUInt16BE(TYPE_NUMBERS[rr.type], 0)
    fixed.writeUInt16BE(CLASS_NUMBERS[rr.klass], 2)
    fixed.writeUInt32BE(rr.ttl, 4)
    fixed.writeUInt16BE(0, 8)
    return Buffer.concat([codecs.name.encode(rr.name), fixed])
  }
  const bytes = Buffer.from(codecs.answer.encode({name: rr.name, type: rr.type, class: 'IN', ttl: rr.ttl, data: rr.data} as packet.Answer))
  bytes.writeUInt16BE(CLASS_NUMBERS[rr.klass], codecs.name.encode.bytes + 2)
  return bytes
}

/** An RFC 2136 UPDATE for `zone` with prerequisites and updates, as raw bytes. */
export function encodeUpdate(id: number, zone: string, updates: UpdateRecord[], prerequisites: UpdateRecord[] = []): Buffer {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(id, 0)
  header.writeUInt16BE(5 << 11, 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(prerequisites.length, 6)
  header.writeUInt16BE(updates.length, 8)
  const zoneSection = Buffer.concat([codecs.name.encode(zone), Buffer.from([0, 6, 0, 1])])
  return Buffer.concat([header, zoneSection, ...prerequisites.map(encodeUpdateRecord), ...updates.map(encodeUpdateRecord)])
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

export {join}

/** A `dns serve` process started through the real CLI, with the port it printed. */
export interface ServeProcess {
  child: ChildProcess
  port: number
  stdout: () => string
  stderr: () => string
  /** Sends SIGTERM and resolves with the exit code. */
  stop: () => Promise<number | null>
}

/** Starts `disk-client dns serve ARGS` and waits for its "listening tcp" line. */
export async function spawnServe(args: string[]): Promise<ServeProcess> {
  const child = spawnCli(['dns', 'serve', ...args])
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const listening = await Promise.race([
    waitFor(() => /listening tcp \S+:(\d+)/.test(stdout), 15_000, 'dns serve to listen').then(() => true),
    exited.then(() => false),
  ])
  if (!listening) throw new Error(`dns serve exited early: ${stderr}`)
  const port = Number(/listening tcp \S+:(\d+)/.exec(stdout)![1])
  return {
    child,
    port,
    stdout: () => stdout,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}
