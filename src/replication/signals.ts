/** Resolves with the first SIGINT or SIGTERM, for a launcher that then stops cleanly and exits 0. */
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
