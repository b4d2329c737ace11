import {connect} from 'node:net'

import {expect} from 'chai'

import {ReplicationClient} from '../../src/replication/client.js'
import {Coordinator} from '../../src/replication/coordinator.js'
import {ReplicaServer} from '../../src/replication/server.js'

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => resolve(true))
  })
}

// The classes run in-process too (start/stop), as tests and embedders use them.
describe('replication servers in-process (start/stop lifecycle)', () => {
  it('serves through a client, and stop() closes every socket and timer', async () => {
    const coordinator = new Coordinator({tickMs: 20, deadPings: 5})
    const coordinatorPort = (await coordinator.start()).port
    const server = new ReplicaServer({coordinator: coordinator.url(), tickMs: 20})
    const serverPort = (await server.start()).port
    expect(server.name).to.equal(`http://127.0.0.1:${serverPort}/`)
    const client = new ReplicationClient({coordinator: coordinator.url(), timeoutMs: 5000})
    try {
      await client.put('a', 'b')
      expect(await client.append('a', 'c')).to.equal(2)
      expect(await client.get('a')).to.equal('bc')
    } finally {
      client.close()
      await server.stop()
      await coordinator.stop()
    }
    expect(await refused(serverPort)).to.equal(true)
    expect(await refused(coordinatorPort)).to.equal(true)
  })
})
