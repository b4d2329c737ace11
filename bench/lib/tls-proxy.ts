// A local HTTPS proxy that answers CONNECT itself: it terminates TLS with a
// self-signed certificate made by openssl for the given host names and
// hands the requests to a local handler. Clients whose API host is fixed
// (rclone's yandex backend) reach a stand-in this way, through
// HTTPS_PROXY and their own CA option. Bench use only.
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type {AddressInfo, Socket} from 'node:net'
import path from 'node:path'

export interface TlsProxy {
  /** For HTTPS_PROXY: `http://127.0.0.1:PORT`. */
  url: string
  /** The certificate (its own CA), PEM. */
  caFile: string
  /** CONNECT requests answered, by target. */
  connects: Map<string, number>
  close(): Promise<void>
}

export async function startTlsProxy(hosts: string[], handler: http.RequestListener, dir: string): Promise<TlsProxy> {
  const keyFile = path.join(dir, 'proxy-key.pem')
  const caFile = path.join(dir, 'proxy-cert.pem')
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-keyout', keyFile, '-out', caFile,
    '-subj', `/CN=${hosts[0]}`,
    '-addext', `subjectAltName=${hosts.map((host) => `DNS:${host}`).join(',')}`,
  ], {stdio: 'ignore'})
  const tls = https.createServer({key: readFileSync(keyFile), cert: readFileSync(caFile)}, handler)
  const sockets = new Set<Socket>()
  const connects = new Map<string, number>()
  const proxy = http.createServer((_req, res) => res.writeHead(405).end('CONNECT only'))
  proxy.on('connect', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    connects.set(req.url ?? '', (connects.get(req.url ?? '') ?? 0) + 1)
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    if (head.length > 0) socket.unshift(head)
    tls.emit('connection', socket)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    caFile,
    connects,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        proxy.close(() => resolve())
      }),
  }
}
