// DNS: dnsperf for 10 s against our authoritative server and against dnsmasq
// serving the same names, side by side in one run. Prints queries per second
// for both and the ratio (target: ours >= 25% of dnsmasq's). Installs dnsperf
// and dnsmasq with apt-get if they are missing; skips what cannot be had.
//
// `node --import tsx bench/dns.bench.ts --serve ZONE` is the server half: it
// runs our DnsServer in its own process, as `dns serve` would.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {createSocket} from 'node:dgram'
import {copyFileSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {DnsServer} from '../src/dns/server.js'
import {queryOnce} from '../src/dns/transport.js'
import {makeQuery} from '../src/dns/wire.js'

const SECONDS = 10
const ZONE_FIXTURE = fileURLToPath(new URL('../test/dns/fixtures/disk.test.zone', import.meta.url))

/** The query mix: answers, a CNAME, SRV, TXT, AAAA, and an NXDOMAIN. */
const QUERIES = [
  'router.disk.test A',
  'node1.disk.test A',
  'node2.disk.test A',
  'www.disk.test A',
  '_disk._tcp.disk.test SRV',
  'info.disk.test TXT',
  'router.disk.test AAAA',
  'nope.disk.test A',
]

/** The same names for dnsmasq, which answers them from its own configuration. */
const DNSMASQ_RECORDS = [
  '--local=/disk.test/',
  '--host-record=router.disk.test,10.0.0.1,fd00::1',
  '--host-record=node1.disk.test,10.0.0.11',
  '--host-record=node2.disk.test,10.0.0.12',
  '--cname=www.disk.test,router.disk.test',
  '--srv-host=_disk._tcp.disk.test,router.disk.test,6379,0,5',
  '--txt-record=info.disk.test,disk cluster,v=1',
]

async function serveMode(zone: string, packetCache: boolean): Promise<void> {
  const server = new DnsServer({port: 0, zoneFiles: [zone], packetCache})
  await server.start()
  console.log(`listening udp 127.0.0.1:${server.port}`)
  const stop = async (): Promise<void> => {
    await server.stop()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], {stdio: 'ignore'}).status === 0
}

let aptUpdated = false
function ensure(tool: string, pkg: string): boolean {
  if (have(tool)) return true
  console.log(`${tool} is missing; installing ${pkg} with apt-get`)
  if (!aptUpdated) {
    spawnSync('apt-get', ['update'], {stdio: 'ignore'})
    aptUpdated = true
  }
  const result = spawnSync('apt-get', ['install', '-y', pkg], {stdio: 'ignore', env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}})
  if (result.status !== 0 || !have(tool)) {
    console.log(`could not install ${pkg} (apt-get exit ${result.status ?? result.signal})`)
    return false
  }
  return true
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()))
  const {port} = socket.address()
  await new Promise<void>((resolve) => socket.close(() => resolve()))
  return port
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}: ${seen}`)), timeoutMs)
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      seen += chunk
      const match = pattern.exec(seen)
      if (match) {
        clearTimeout(timer)
        resolve(match)
      }
    })
    child.once('exit', (code) => reject(new Error(`exited ${code} before ${pattern}: ${seen}`)))
  })
}

/** Answers once, so a server that is up but wrong is not benchmarked. */
async function check(port: number): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const {answer} = await queryOnce({host: '127.0.0.1', port}, makeQuery(1, 'router.disk.test', 'A'), {timeoutMs: 300, tries: 1})
      return answer.answers.some((rr) => rr.data === '10.0.0.1')
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return false
}

function dnsperf(port: number, queries: string): {qps: number; lost: string} | undefined {
  const result = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', String(SECONDS)], {
    encoding: 'utf8',
    timeout: (SECONDS + 30) * 1000,
  })
  const qps = /Queries per second:\s+([\d.]+)/.exec(result.stdout ?? '')
  const lost = /Queries lost:\s+(.+)/.exec(result.stdout ?? '')
  if (!qps) {
    console.log(`dnsperf failed: ${result.stderr || result.stdout || result.error}`)
    return undefined
  }
  return {qps: Number(qps[1]), lost: lost?.[1].trim() ?? '?'}
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
  await exited
  clearTimeout(timer)
}

async function main(): Promise<void> {
  if (!ensure('dnsperf', 'dnsperf')) {
    console.log('dns: skipped (no dnsperf)')
    return
  }
  const withDnsmasq = ensure('dnsmasq', 'dnsmasq')
  const dir = mkdtempSync(join(tmpdir(), 'dns-bench-'))
  const zone = join(dir, 'disk.test.zone')
  copyFileSync(ZONE_FIXTURE, zone)
  const queries = join(dir, 'queries.txt')
  writeFileSync(queries, QUERIES.join('\n') + '\n')

  let ours: ChildProcess | undefined
  let dnsmasq: ChildProcess | undefined
  const runOurs = async (label: string, extra: string[]): Promise<ReturnType<typeof dnsperf>> => {
    ours = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', zone, ...extra], {stdio: ['ignore', 'pipe', 'inherit']})
    const ourPort = Number((await waitForLine(ours, /listening udp 127\.0\.0\.1:(\d+)/, 20_000))[1])
    if (!(await check(ourPort))) throw new Error('our server does not answer router.disk.test A')
    const result = dnsperf(ourPort, queries)
    await stopChild(ours)
    ours = undefined
    if (result) console.log(`  ${label} ${result.qps.toFixed(0)} queries/s (lost ${result.lost})`)
    return result
  }
  try {
    console.log(`dnsperf ${SECONDS} s each, ${QUERIES.length} names (A, CNAME, SRV, TXT, AAAA, NXDOMAIN), UDP`)
    const mine = await runOurs('ours:                    ', [])
    const uncached = await runOurs('ours, packet cache off:  ', ['--no-packet-cache'])

    if (!withDnsmasq) {
      console.log('  dnsmasq: skipped (not installable); no ratio')
      return
    }
    const port = await freeUdpPort()
    dnsmasq = spawn(
      'dnsmasq',
      ['--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--no-poll', '--pid-file=', `--port=${port}`,
        '--listen-address=127.0.0.1', '--bind-interfaces', '--cache-size=1000', ...DNSMASQ_RECORDS],
      {stdio: 'ignore'},
    )
    if (!(await check(port))) throw new Error('dnsmasq does not answer router.disk.test A')
    const anchor = dnsperf(port, queries)
    if (anchor) console.log(`  dnsmasq:                  ${anchor.qps.toFixed(0)} queries/s (lost ${anchor.lost})`)
    if (mine && anchor) {
      const ratio = mine.qps / anchor.qps
      console.log(`  ratio ours/dnsmasq: ${(ratio * 100).toFixed(1)}% (target >= 25%: ${ratio >= 0.25 ? 'met' : 'NOT met'})`)
    }
    if (uncached && anchor) console.log(`  ratio without the packet cache: ${((uncached.qps / anchor.qps) * 100).toFixed(1)}%`)
  } finally {
    await stopChild(ours)
    await stopChild(dnsmasq)
    rmSync(dir, {recursive: true, force: true})
  }
}

if (process.argv[2] === '--serve') {
  await serveMode(process.argv[3], process.argv[4] !== '--no-packet-cache')
} else {
  await main().catch((error: unknown) => {
    console.log(`dns bench did not finish: ${(error as Error).message}`)
  })
}
