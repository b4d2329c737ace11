import {spawn} from 'node:child_process'

export interface Measured {
  seconds: number
  peakRssMb: number | null
  /** CPU time of the command itself (GNU time's User and System time), null without GNU time. */
  userSeconds: number | null
  systemSeconds: number | null
  code: number | null
  stderr: string
}

/**
 * Runs a command under /usr/bin/time -v (when present) and returns its wall
 * time and peak RSS. Runs it plainly if GNU time is missing.
 */
export function measure(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn('/usr/bin/time', ['-v', command, ...args], {env, stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)
      const user = /User time \(seconds\): ([\d.]+)/.exec(stderr)
      const system = /System time \(seconds\): ([\d.]+)/.exec(stderr)
      resolve({seconds, peakRssMb: rss ? Number(rss[1]) / 1024 : null, userSeconds: user ? Number(user[1]) : null, systemSeconds: system ? Number(system[1]) : null, code, stderr})
    })
  })
}

export const mbps = (bytes: number, seconds: number) => bytes / 1e6 / seconds
