import type net from 'node:net'

/** Binds `server` to host:port (0 picks a free port) and resolves with the address it got; rejects on a bind error such as EADDRINUSE. */
export function listenTcp(server: net.Server, port: number, host: string): Promise<{host: string; port: number}> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve({host, port: (server.address() as net.AddressInfo).port})
    })
  })
}
