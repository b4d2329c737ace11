/** One JSON line per event, on stderr or appended to a file. */
import {createWriteStream, type WriteStream} from 'node:fs'

export type LogEvent = Record<string, unknown> & {event: string}
export type Logger = (event: LogEvent) => void

export interface JsonLog {
  log: Logger
  close(): Promise<void>
}

export function jsonLog(file?: string): JsonLog {
  const stream: WriteStream | NodeJS.WriteStream = file ? createWriteStream(file, {flags: 'a'}) : process.stderr
  return {
    log: (event) => {
      stream.write(JSON.stringify({time: new Date().toISOString(), ...event}) + '\n')
    },
    close: () => (file ? new Promise<void>((resolve) => (stream as WriteStream).end(() => resolve())) : Promise.resolve()),
  }
}

/** Waits `ms`, or less when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}
