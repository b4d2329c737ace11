/**
 * Child processes for `cluster start`: runs `bin/run.js` with arguments,
 * waits for its "listening tcp HOST:PORT" line, forwards its stderr.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {createInterface} from 'node:readline'

export interface Child {
  name: string
  process: ChildProcess
  address: string
}

/** Starts a child and resolves with its listening address; rejects if it exits or is silent for `timeoutMs`. */
export function startChild(bin: string, name: string, args: string[], timeoutMs = 20_000): Promise<Child> {
  const child = spawn(process.execPath, [bin, ...args], {stdio: ['ignore', 'pipe', 'pipe']})
  createInterface({input: child.stderr!}).on('line', (line) => process.stderr.write(`[${name}] ${line}\n`))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${name} did not start within ${timeoutMs} ms`))
    }, timeoutMs)
    const lines = createInterface({input: child.stdout!})
    lines.on('line', (line) => {
      const match = /^listening tcp (\S+)/.exec(line)
      if (!match) return
      clearTimeout(timer)
      resolve({name, process: child, address: match[1]})
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited (${code ?? signal}) before listening`))
    })
  })
}

/** SIGTERM to every child, SIGKILL to those still running after `graceMs`; resolves when all have exited. */
export async function stopChildren(children: ChildProcess[], graceMs = 5000): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
          child.once('exit', () => {
            clearTimeout(timer)
            resolve()
          })
          child.kill('SIGTERM')
        }),
    ),
  )
}
