import {YandexBackend} from '../../../src/backends/yandex/index.js'
import {describeStorageCompliance} from '../../compliance/storage.js'
import {FakeYandexDisk} from './fake-disk.js'

describeStorageCompliance('yandex (nock fake of the REST API)', async () => {
  const fake = new FakeYandexDisk().start()
  const adapter = new YandexBackend({
    token: fake.token,
    apiUrl: fake.apiUrl,
    retries: 0,
    retryBaseMs: 1,
    pageSize: 7,
    operationPollMs: 5,
  })
  return {
    adapter,
    async teardown() {
      fake.stop()
      fake.done()
    },
  }
})
