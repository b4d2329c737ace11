import fs from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {KvRouter} from '../../kv/router.js'
import {KvServer} from '../../kv/server.js'
import {TemporaryError} from '../errors.js'

/** How long a second process waits for the embedded data dir before giving up (exit 5). */
const LOCK_WAIT_MS = 5000

export interface EmbeddedCluster {
  router: string
  stop(): Promise<void>
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes the data dir's lock file (O_EXCL, holding our pid). A lock whose
 * process is gone is stale and taken over; a live one is waited for briefly.
 */
async function lock(dataDir: string, waitMs: number): Promise<() => Promise<void>> {
  const file = path.join(dataDir, 'lock')
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      await fs.writeFile(file, String(process.pid), {flag: 'wx'})
      return () => fs.rm(file, {force: true})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }

    const holder = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim())
    if (!Number.isInteger(holder) || holder <= 0 || !alive(holder)) {
      await fs.rm(file, {force: true})
      continue
    }

    if (Date.now() > deadline) {
      throw new TemporaryError(
        `the embedded cluster's data dir ${dataDir} is in use by process ${holder}; wait for it to finish, or run a cluster and set DISK_CLUSTER`,
      )
    }

    await sleep(100)
  }
}

/**
 * Runs a router and one server inside this process on 127.0.0.1 (ephemeral
 * ports), with data in `dataDir`, for as long as one command needs them.
 */
export async function startEmbedded(dataDir: string, options: {lockWaitMs?: number} = {}): Promise<EmbeddedCluster> {
  await fs.mkdir(dataDir, {recursive: true})
  const unlock = await lock(dataDir, options.lockWaitMs ?? LOCK_WAIT_MS)
  const router = new KvRouter({host: '127.0.0.1', port: 0, servers: 1, replicas: 1, dataDir: path.join(dataDir, 'router')})
  let server: KvServer | undefined
  try {
    await router.start()
    server = new KvServer({number: 0, host: '127.0.0.1', port: 0, dataDir: path.join(dataDir, 'server0'), router: router.address})
    await server.start()
    const deadline = Date.now() + 5000
    while (router.members.members[0]?.state !== 'up') {
      if (Date.now() > deadline) throw new TemporaryError('the embedded cluster server did not come up within 5 s')
      await sleep(10)
    }
  } catch (error) {
    await server?.stop().catch(() => {})
    await router.stop().catch(() => {})
    await unlock()
    throw error
  }

  return {
    router: `${router.address.host}:${router.address.port}`,
    async stop() {
      await server?.stop()
      await router.stop()
      await unlock()
    },
  }
}
