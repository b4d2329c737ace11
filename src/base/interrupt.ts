import {rmSync} from 'node:fs'

/** Temporary files of transfers in progress, removed if the process is interrupted. */
const partialFiles = new Set<string>()
/** Remote uploads in progress (S3 multipart uploads), aborted if the process is interrupted. */
const pendingAborts = new Set<() => Promise<void>>()
let installed = false
let signalled = false

/** How long an interrupted process waits for remote aborts before it exits anyway. */
const ABORT_GRACE_MS = 10_000

/** True once SIGINT/SIGTERM arrived: the handler below owns the exit from then on. */
export function interrupted(): boolean {
  return signalled
}

export function trackPartial(file: string): () => void {
  partialFiles.add(file)
  return () => partialFiles.delete(file)
}

/**
 * Registers a remote clean-up (e.g. AbortMultipartUpload) to run if the
 * process is interrupted before the upload ends; returns the function that
 * unregisters it.
 */
export function trackAbort(abort: () => Promise<void>): () => void {
  pendingAborts.add(abort)
  return () => pendingAborts.delete(abort)
}

/**
 * On SIGINT/SIGTERM, removes every partial file still in progress, aborts
 * remote uploads still in progress (waiting at most ABORT_GRACE_MS), then
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
      signalled = true
      for (const file of partialFiles) rmSync(file, {force: true})
      if (pendingAborts.size === 0) {
        process.stderr.write(`\ninterrupted (${signal}); partial files removed\n`)
        process.exit(code)
      }

      const aborts = [...pendingAborts].map((abort) => abort().catch(() => {}))
      const grace = new Promise((resolve) => setTimeout(resolve, ABORT_GRACE_MS).unref())
      void Promise.race([Promise.all(aborts), grace]).then(() => {
        process.stderr.write(`\ninterrupted (${signal}); partial files removed, ${aborts.length} upload(s) aborted\n`)
        process.exit(code)
      })
    })
  }
}
