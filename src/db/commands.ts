/**
 * What the main and a replica answer alike: the read commands, SELECT, PING,
 * the handshake noise clients send (COMMAND, CLIENT, CONFIG GET), and INFO's
 * shared sections. Writes are the main's (main.ts); a replica refuses them.
 */
import {globToRegExp} from '../kv/glob.js'
import {NULL_BULK, OK, PONG, array, bulk, error, integer, type Encoded} from '../kv/resp.js'
import type {Session} from '../kv/connection.js'
import type {Dataset} from './dataset.js'
import {DATABASES} from './rdb.js'

export const WRONG_ARGS = (name: string): Buffer => error(`ERR wrong number of arguments for '${name.toLowerCase()}' command`)
export const NOT_INTEGER = error('ERR value is not an integer or out of range')

/** Commands that change data: a replica answers them with READONLY, the proxy sends them to the main. */
export const WRITE_COMMANDS = new Set(['SET', 'DEL', 'INCR', 'INCRBY', 'DECR', 'DECRBY', 'APPEND', 'MSET', 'SETNX', 'GETSET', 'UNLINK', 'FLUSHDB', 'FLUSHALL'])

/** Commands the proxy may send to a replica. */
export const READ_COMMANDS = new Set(['GET', 'MGET', 'EXISTS', 'KEYS', 'DBSIZE', 'STRLEN'])

/** Per-command call counts, shown as INFO commandstats. */
export class CommandStats {
  private readonly calls = new Map<string, number>()

  count(name: string): void {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1)
  }

  reset(): void {
    this.calls.clear()
  }

  section(): string {
    const lines = ['# Commandstats']
    for (const [name, calls] of [...this.calls].sort()) lines.push(`cmdstat_${name.toLowerCase()}:calls=${calls},usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=0`)
    return lines.join('\r\n') + '\r\n'
  }
}

export function keyspaceSection(data: Dataset): string {
  const lines = ['# Keyspace']
  for (let db = 0; db < DATABASES; db++) if (data.size(db) > 0) lines.push(`db${db}:keys=${data.size(db)},expires=0,avg_ttl=0`)
  return lines.join('\r\n') + '\r\n'
}

export function serverSection(role: string, port: number, started: number): string {
  return (
    [
      '# Server',
      'redis_version:7.0.0',
      'redis_mode:standalone',
      `process_id:${process.pid}`,
      `tcp_port:${port}`,
      `uptime_in_seconds:${Math.floor((Date.now() - started) / 1000)}`,
      `server_implementation:disk-client db ${role}`,
    ].join('\r\n') + '\r\n'
  )
}

/** Parses a decimal integer argument (Redis's rules: optional '-', digits, within 64-bit; here within 2^53). */
export function parseInteger(arg: Buffer): number | null {
  const text = arg.toString('latin1')
  if (!/^-?(0|[1-9]\d{0,15})$/.test(text)) return null
  const n = Number(text)
  return Number.isSafeInteger(n) ? n : null
}

/**
 * Answers a command both roles share; returns undefined for any other
 * command. `name` is the upper-cased command name.
 */
export function sharedCommand(name: string, args: Buffer[], session: Session, data: Dataset): Encoded | undefined {
  switch (name) {
    case 'PING':
      if (args.length > 2) return WRONG_ARGS(name)
      return args.length === 2 ? bulk(args[1]) : PONG
    case 'ECHO':
      return args.length === 2 ? bulk(args[1]) : WRONG_ARGS(name)
    case 'SELECT': {
      if (args.length !== 2) return WRONG_ARGS(name)
      const db = parseInteger(args[1])
      if (db === null) return NOT_INTEGER
      if (db < 0 || db >= DATABASES) return error('ERR DB index is out of range')
      session.db = db
      return OK
    }
    case 'GET':
      if (args.length !== 2) return WRONG_ARGS(name)
      return bulk(data.get(session.db, args[1]) ?? null)
    case 'MGET':
      if (args.length < 2) return WRONG_ARGS(name)
      return array(args.slice(1).map((key) => bulk(data.get(session.db, key) ?? null)))
    case 'EXISTS':
      if (args.length < 2) return WRONG_ARGS(name)
      return integer(args.slice(1).filter((key) => data.has(session.db, key)).length)
    case 'STRLEN':
      if (args.length !== 2) return WRONG_ARGS(name)
      return integer(data.get(session.db, args[1])?.length ?? 0)
    case 'DBSIZE':
      return integer(data.size(session.db))
    case 'KEYS': {
      if (args.length !== 2) return WRONG_ARGS(name)
      const pattern = args[1].toString('latin1')
      const out: Encoded[] = []
      if (pattern === '*') for (const key of data.keys(session.db)) out.push(bulk(key))
      else {
        const match = globToRegExp(pattern)
        for (const key of data.keys(session.db)) if (match.test(key.toString('latin1'))) out.push(bulk(key))
      }
      return array(out)
    }
    case 'COMMAND':
      return array([])
    case 'CLIENT':
      if (args.length >= 2 && args[1].toString('latin1').toUpperCase() === 'GETNAME') return NULL_BULK
      if (args.length >= 2 && args[1].toString('latin1').toUpperCase() === 'ID') return integer(1)
      return OK
    case 'HELLO':
      return error('NOPROTO this server speaks RESP2 only')
    default:
      return undefined
  }
}

/** CONFIG GET (what redis-benchmark and redis-cli ask) and CONFIG RESETSTAT; other subcommands are errors. */
export function configCommand(args: Buffer[], stats: CommandStats): Encoded {
  const sub = args[1]?.toString('latin1').toUpperCase()
  if (sub === 'GET') return configGet(args)
  if (sub === 'RESETSTAT') {
    stats.reset()
    return OK
  }
  return error(`ERR CONFIG ${sub ?? ''} is not supported`)
}

/** CONFIG GET: an empty answer for anything but the few settings clients ask for. */
function configGet(args: Buffer[]): Encoded {
  const answers: Record<string, string> = {save: '', appendonly: 'no', databases: String(DATABASES)}
  const out: Encoded[] = []
  for (const arg of args.slice(2)) {
    const name = arg.toString('latin1').toLowerCase()
    if (name in answers) out.push(bulk(name), bulk(answers[name]))
  }
  return array(out)
}

