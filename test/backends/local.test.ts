import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import {expect} from 'chai'

import {LocalBackend, createLocalBackend} from '../../src/backends/local/index.js'
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

describe('local backend: a source that fails at once', () => {
  it('leaves no temporary file behind a failed write or copy', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'disk-client-local-fail-'))
    try {
      const adapter = new LocalBackend(root)
      for (let i = 0; i < 20; i++) {
        const source = new Readable({
          read() {
            this.destroy(new Error('connection reset by peer'))
          },
        })
        let failed = false
        await adapter.write(`/f${i}.bin`, source).catch(() => (failed = true))
        expect(failed).to.equal(true)
        const copyFailed = await adapter.copy('/missing.bin', `/c${i}.bin`).then(
          () => false,
          () => true,
        )
        expect(copyFailed).to.equal(true)
      }

      expect(await fs.readdir(root)).to.deep.equal([])
    } finally {
      await fs.rm(root, {recursive: true, force: true})
    }
  })
})
