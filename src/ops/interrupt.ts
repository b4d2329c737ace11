import {rmSync} from 'node:fs'

/** Temporary files of transfers in progress, removed if the process is interrupted. */
const partialFiles = new Set<string>()
let installed = false

export function trackPartial(file: string): () => void {
  partialFiles.add(file)
  return () => partialFiles.delete(file)
}

/**
 * On SIGINT/SIGTERM, removes every partial file still in progress, then
 * exits 130/143 as shells expect; no half-written file is left behind.
 */
export function cleanUpOnInterrupt(): void {
  if (installed) return
  installed = true
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      for (const file of partialFiles) rmSync(file, {force: true})
      process.stderr.write(`\ninterrupted (${signal}); partial files removed\n`)
      process.exit(code)
    })
  }
}
