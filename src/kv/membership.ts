/**
 * The router's view of its servers: addresses (persisted), up/down state,
 * last heartbeat, and one pipelined connection to each server that is up.
 *
 * A server is up once a connection to it answers PING. It goes down when its
 * heartbeats stop for `heartbeatTimeoutMs`, or at once when its connection
 * fails. A heartbeat from a down server (or one announcing a new incarnation,
 * i.e. a restart) makes the router probe it and, on success, run `onUp`,
 * which replays hints and schedules anti-entropy.
 */
import {RespClient, RespConnectionError, type RespCallback, type RespValue} from './client.js'
import type {Heartbeat} from './heartbeat.js'
import type {RouterStore} from './hints.js'
import type {Arg, Encoded} from './resp.js'

/** How often the router checks for servers whose heartbeats stopped. */
const SWEEP_MS = 200

export interface Member {
  number: number
  address: {host: string; port: number} | null
  state: 'up' | 'down'
  /** Date.now() of the last heartbeat (or successful probe); null if never. */
  lastHeartbeat: number | null
  incarnation: string | null
  client: RespClient | null
}

export class ServerDownError extends Error {
  constructor(number: number) {
    super(`server ${number} is down`)
    this.name = 'ServerDownError'
  }
}

export interface MembershipOptions {
  servers: number
  store: RouterStore
  heartbeatTimeoutMs: number
  onUp: (number: number) => void
  log: (line: string) => void
}

export class Membership {
  readonly members: Member[]
  private readonly options: MembershipOptions
  private readonly probing = new Set<number>()
  private timer: NodeJS.Timeout | null = null
  private stopped = false

  constructor(options: MembershipOptions) {
    this.options = options
    this.members = Array.from({length: options.servers}, (_, number) => ({
      number,
      address: null,
      state: 'down' as const,
      lastHeartbeat: null,
      incarnation: null,
      client: null,
    }))
  }

  /** Loads the persisted addresses and probes them; starts the heartbeat-timeout sweep. */
  async start(): Promise<void> {
    for (const [number, address] of await this.options.store.loadMembers()) {
      if (number < this.members.length) this.members[number].address = address
    }
    await Promise.all(this.members.map((member) => this.probe(member.number)))
    this.lastSweep = Date.now()
    this.timer = setInterval(() => this.sweep(), SWEEP_MS)
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    for (const member of this.members) {
      member.client?.close()
      member.client = null
    }
  }

  isUp(number: number): boolean {
    return this.members[number].state === 'up'
  }

  get upCount(): number {
    return this.members.filter((member) => member.state === 'up').length
  }

  /** A heartbeat or announcement: learn the address, note the time, probe if down or restarted. */
  heard(beat: Heartbeat): void {
    if (!Number.isInteger(beat.number) || beat.number < 0 || beat.number >= this.members.length) return
    const member = this.members[beat.number]
    const moved = !member.address || member.address.host !== beat.host || member.address.port !== beat.port
    const restarted = member.incarnation !== null && member.incarnation !== beat.incarnation
    member.incarnation = beat.incarnation
    if (moved) {
      member.address = {host: beat.host, port: beat.port}
      void this.options.store.saveMember(member.number, member.address).catch(() => undefined)
    }
    if (moved || restarted) {
      if (member.state === 'up') this.markDown(member.number, moved ? 'moved' : 'restarted')
    }
    if (member.state === 'up') member.lastHeartbeat = Date.now()
    else void this.probe(member.number, Date.now())
  }

  /** Marks a server down and drops its connection. */
  markDown(number: number, reason: string): void {
    const member = this.members[number]
    if (member.client) {
      const client = member.client
      member.client = null
      client.close()
    }
    if (member.state === 'down') return
    member.state = 'down'
    this.options.log(`server ${number} down (${reason})`)
  }

  /** Sends a command to a server; a connection failure marks it down. */
  async call(number: number, ...args: Arg[]): Promise<RespValue> {
    const client = this.members[number].client
    if (!client || this.members[number].state !== 'up') throw new ServerDownError(number)
    try {
      return await client.call(...args)
    } catch (error) {
      if (error instanceof RespConnectionError) this.markDown(number, error.message)
      throw error
    }
  }

  /**
   * call() by callback, for a command already encoded (resp.ts encodeArgs):
   * the router's hot path. A server that is not up fails with
   * ServerDownError (possibly at once); a connection failure marks it down.
   */
  send(number: number, command: Encoded, done: RespCallback): void {
    const member = this.members[number]
    const client = member.client
    if (!client || member.state !== 'up') {
      done(new ServerDownError(number), null)
      return
    }
    client.send(command, (error, reply) => {
      if (error instanceof RespConnectionError) this.markDown(number, error.message)
      done(error, reply)
    })
  }

  private async probe(number: number, heardAt?: number): Promise<void> {
    const member = this.members[number]
    if (!member.address || this.probing.has(number) || this.stopped) return
    this.probing.add(number)
    try {
      const client = await RespClient.connect({...member.address, connectTimeoutMs: 2000})
      try {
        await client.call('PING')
      } catch (error) {
        client.close()
        throw error
      }
      if (this.stopped) {
        client.close()
        return
      }
      member.client?.close()
      member.client = client
      client.onClose((error) => {
        if (member.client === client) this.markDown(number, error.message)
      })
      member.state = 'up'
      member.lastHeartbeat = heardAt ?? Date.now()
      this.options.log(`server ${number} up at ${member.address.host}:${member.address.port}`)
      this.options.onUp(number)
    } catch {
      // still down; the next heartbeat probes again
    } finally {
      this.probing.delete(number)
    }
  }

  /** When the last sweep ran. */
  private lastSweep = 0

  private sweep(): void {
    const now = Date.now()
    // A sweep that comes late means this process was busy (a 64 MiB value, a
    // loaded machine): heartbeats that arrived meanwhile still wait in the
    // socket, and timers run before I/O. Let them in before judging anyone.
    const late = now - this.lastSweep > SWEEP_MS * 4
    this.lastSweep = now
    if (late) return
    for (const member of this.members) {
      if (member.state === 'up' && member.lastHeartbeat !== null && now - member.lastHeartbeat > this.options.heartbeatTimeoutMs) {
        this.markDown(member.number, `no heartbeat for ${now - member.lastHeartbeat} ms`)
      }
    }
  }
}
