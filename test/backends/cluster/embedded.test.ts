import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {createClusterBackend} from '../../../src/backends/cluster/index.js'
import {describeStorageCompliance} from '../../compliance/storage.js'

describeStorageCompliance('cluster (embedded)', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-embedded-'))
  const adapter = await createClusterBackend({
    retries: 0,
    retryBaseMs: 1,
    yandexApiUrl: '',
    localRoot: '',
    dataDir,
    log: () => {},
  })
  return {adapter, teardown: () => fs.rm(dataDir, {recursive: true, force: true})}
})
