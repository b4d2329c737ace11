// Global mocha setup (a root hook plugin): no test may reach the network.
// Only 127.0.0.1/localhost is allowed, for the project's own real servers.
import nock from 'nock'

export const mochaHooks = {
  beforeAll(): void {
    nock.disableNetConnect()
    nock.enableNetConnect(/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/)
  },
  afterAll(): void {
    nock.enableNetConnect()
  },
}
