/** Small helpers shared by the cluster launchers. */

/** Parses `HOST:PORT` (IPv6 as `[::1]:PORT`); throws a plain Error on bad input. */
export function parseHostPort(text: string): {host: string; port: number} {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim())
  const port = match ? Number(match[3]) : NaN
  if (!match || port < 1 || port > 65_535) throw new Error(`bad address '${text}'; expected HOST:PORT`)
  return {host: match[1] ?? match[2], port}
}

export function formatHostPort(address: {host: string; port: number}): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

