import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {createLocalBackend} from '../../src/backends/local/index.js'
import {describeStorageCompliance} from '../compliance/storage.js'

describeStorageCompliance('local', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-local-'))
  const adapter = await createLocalBackend({
    retries: 0,
    retryBaseMs: 1,
    yandexApiUrl: '',
    localRoot: root,
    dataDir: '',
    log: () => {},
  })
  return {adapter, teardown: () => fs.rm(root, {recursive: true, force: true})}
})
