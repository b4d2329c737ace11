/**
 * Resolves with the first SIGINT or SIGTERM, for a server command that then
 * stops cleanly and exits 0. Call it before printing the listening line: a
 * signal sent as soon as that line is read must find the handler in place.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const signals = ['SIGINT', 'SIGTERM'] as const
    const on = (signal: NodeJS.Signals): void => {
      for (const s of signals) process.off(s, on)
      resolve(signal)
    }
    for (const s of signals) process.on(s, on)
  })
}
