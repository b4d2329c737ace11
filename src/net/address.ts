import {lookup} from 'node:dns/promises'
import {isIP, isIPv6} from 'node:net'

import {UsageError} from '../base/index.js'

export interface Endpoint {
  host: string
  port: number
}

/** Parses `HOST:PORT` or `[V6]:PORT` (port 1-65535); a UsageError otherwise. */
export function parseHostPort(text: string): Endpoint {
  const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(text)
  const port = match ? Number(match[2]) : Number.NaN
  if (!match || port < 1 || port > 65_535) throw new UsageError(`bad address ${JSON.stringify(text)}: expected HOST:PORT or [IPV6]:PORT with a port from 1 to 65535`)
  return {host: match[1], port}
}

export function formatHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/** `::ffff:1.2.3.4` (a v4 peer on a dual-stack socket) and `1.2.3.4` are the same sender. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/** An IP literal as is; a name through the system resolver, in the socket's family. */
export async function resolveHost(host: string, family: 4 | 6): Promise<string> {
  if (isIP(host)) return host
  try {
    return (await lookup(host, {family})).address
  } catch (error) {
    throw new UsageError(`cannot resolve ${host}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}
