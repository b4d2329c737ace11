// A private Apache httpd with mod_dav for the WebDAV tests: its own config in
// a temp dir, a free 127.0.0.1 port, basic auth from an htpasswd file.
// Started once per mocha run by the first test that asks for it, shared,
// and stopped by a root after-hook at the end of the run.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {chownSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'

import {freePort} from './net.js'

export {freePort}

export const APACHE_BIN = '/usr/sbin/apache2'
const MODULES = '/usr/lib/apache2/modules'

export interface ApacheDav {
  /** The DAV root, e.g. http://127.0.0.1:PORT/dav */
  url: string
  user: string
  password: string
  /** The folder Apache serves. */
  root: string
  /** Apache's access log: `METHOD PATH STATUS BYTES_IN BYTES_OUT` a line. */
  accessLog: string
  port: number
}

let started: Promise<ApacheDav> | undefined
let child: ChildProcess | undefined
let dir: string | undefined


function config(base: string, port: number, runAs: string | undefined): string {
  const modules = ['mpm_event', 'authn_core', 'authz_core', 'authz_user', 'authn_file', 'auth_basic', 'dav', 'dav_fs', 'mime', 'dir', 'alias']
  return [
    `ServerRoot "${base}"`,
    ...modules.map((m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`),
    `Listen 127.0.0.1:${port}`,
    'ServerName 127.0.0.1',
    `PidFile "${base}/httpd.pid"`,
    `ErrorLog "${base}/error.log"`,
    'LogLevel warn',
    `LogFormat "%m %U %>s %I %O" dav`,
    `CustomLog "${base}/access.log" dav`,
    ...(runAs ? [`User ${runAs}`, `Group ${runAs}`] : []),
    'ThreadsPerChild 25',
    'MaxRequestWorkers 50',
    'KeepAlive On',
    'LimitRequestBody 0',
    'TypesConfig /etc/mime.types',
    `DavLockDB "${base}/lock/DavLock"`,
    `Alias /dav "${base}/dav"`,
    `<Directory "${base}/dav">`,
    '  Dav On',
    '  AuthType Basic',
    '  AuthName "dav"',
    `  AuthUserFile "${base}/htpasswd"`,
    '  Require valid-user',
    '  Options None',
    '  AllowOverride None',
    '</Directory>',
    '',
  ].join('\n')
}

function request(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {method: 'OPTIONS'}, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

async function start(): Promise<ApacheDav> {
  dir = mkdtempSync(path.join(os.tmpdir(), 'disk-client-apache-'))
  chmodSync(dir, 0o755)
  const root = path.join(dir, 'dav')
  mkdirSync(root)
  mkdirSync(path.join(dir, 'lock'))
  const user = 'dav'
  const password = 'dav-secret'
  const htpasswd = spawnSync('htpasswd', ['-cbB', path.join(dir, 'htpasswd'), user, password], {encoding: 'utf8'})
  if (htpasswd.status !== 0) throw new Error(`htpasswd failed: ${htpasswd.stderr}`)
  // As root, Apache's workers run as www-data and must write the DAV and lock folders.
  const runAs = process.getuid?.() === 0 ? 'www-data' : undefined
  if (runAs) {
    const {uid, gid} = (() => {
      const id = spawnSync('id', ['-u', runAs], {encoding: 'utf8'})
      const group = spawnSync('id', ['-g', runAs], {encoding: 'utf8'})
      return {uid: Number(id.stdout), gid: Number(group.stdout)}
    })()
    chownSync(root, uid, gid)
    chownSync(path.join(dir, 'lock'), uid, gid)
    chmodSync(path.join(dir, 'htpasswd'), 0o644)
  }

  let lastError = ''
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const conf = path.join(dir, 'httpd.conf')
    writeFileSync(conf, config(dir, port, runAs))
    const proc = spawn(APACHE_BIN, ['-f', conf, '-DFOREGROUND'], {stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    let exited = false
    proc.once('exit', () => (exited = true))
    const deadline = Date.now() + 15_000
    while (!exited && Date.now() < deadline) {
      const status = await request(`http://127.0.0.1:${port}/dav/`).catch(() => 0)
      if (status > 0) {
        child = proc
        return {url: `http://127.0.0.1:${port}/dav`, user, password, root, accessLog: path.join(dir, 'access.log'), port}
      }

      await new Promise((resolve) => setTimeout(resolve, 50))
    }

    proc.kill('SIGKILL')
    let log = ''
    try {
      log = readFileSync(path.join(dir, 'error.log'), 'utf8')
    } catch {}
    lastError = `${stderr}${log}`
  }

  throw new Error(`Apache did not start: ${lastError}`)
}

/** The shared Apache mod_dav instance, started on first use. */
export function apacheDav(): Promise<ApacheDav> {
  started ??= start()
  return started
}

export async function stopApache(): Promise<void> {
  const proc = child
  child = undefined
  started = undefined
  if (proc && proc.exitCode === null) {
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    // SIGTERM stops httpd and its workers at once.
    proc.kill('SIGTERM')
    await exited
  }

  if (dir) rmSync(dir, {recursive: true, force: true})
  dir = undefined
}

process.once('exit', () => {
  if (child && child.exitCode === null) child.kill('SIGKILL')
})

// A root-level hook: runs once, after every test file of the run.
if (typeof after === 'function') after(stopApache)
