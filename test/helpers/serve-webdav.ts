// `disk-client serve webdav` as a child process for the tests: started on
// port 0, its URL read from its first stdout line, stopped with SIGTERM.
import type {ChildProcess} from 'node:child_process'

import {spawnCli} from './cli.js'

export interface Served {
  child: ChildProcess
  url: string
}

/** Starts `serve webdav -p 0 ARGS` and resolves with its URL from the first line. */
export function serveWebdav(args: string[], env: NodeJS.ProcessEnv): Promise<Served> {
  const child = spawnCli(['serve', 'webdav', '-p', '0', ...args], {env})
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()))
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /^webdav: (http:\/\/\S+)$/m.exec(out)
      if (match) resolve({child, url: match[1]})
    })
    child.once('exit', (code) => reject(new Error(`serve webdav exited ${code}: ${err}`)))
  })
}

/** SIGTERM and its exit code (the exit code it already had, if it had exited). */
export async function stopWebdav(served: Served | undefined): Promise<number | null> {
  if (!served || served.child.exitCode !== null) return served?.child.exitCode ?? null
  const exited = new Promise<number | null>((resolve) => served.child.once('exit', (code) => resolve(code)))
  served.child.kill('SIGTERM')
  return exited
}
