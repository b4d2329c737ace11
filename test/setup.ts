// Global mocha setup (a root hook plugin): no test may reach the network.
// Only 127.0.0.1/localhost is allowed, for the project's own real servers.
import nock from 'nock'

import {stopSharedRadosgw} from './helpers/radosgw.js'

export const mochaHooks = {
  beforeAll(): void {
    nock.disableNetConnect()
    nock.enableNetConnect(/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/)
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    nock.enableNetConnect()
    // The Ceph cluster the S3 tests share, if one was started.
    this.timeout(60_000)
    await stopSharedRadosgw()
  },
}
