// Site bench (DESIGN.md §12): real `site local` and `site central` processes
// through the built CLI (built here if dist/ is missing), loopback only.
// 1. Pull throughput: four locals preloaded with records, then a central
//    started with --poll-ms 100; records per second from its start until it
//    holds them all.
// 2. Latency from a record's creation (PUT at a local) to its arrival at the
//    central (seen on the central's own longpoll _changes feed), with
//    --poll-ms at its default (5000) and with --longpoll.
// Never fails on a number.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const PER_LOCAL = Number(process.env.SITE_BENCH_RECORDS ?? 5000)
const LATENCY_SAMPLES = Number(process.env.SITE_BENCH_SAMPLES ?? 8)
const dir = mkdtempSync(path.join(tmpdir(), 'site-bench-'))
const children: ChildProcess[] = []

function start(args: string[]): Promise<{url: string; port: number; child: ChildProcess}> {
  const child = spawn(process.execPath, [path.join(root, 'bin/run.js'), ...args], {stdio: ['ignore', 'pipe', 'ignore']})
  children.push(child)
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
      const match = /^listening http 127\.0\.0\.1:(\d+)$/m.exec(out)
      if (match) resolve({url: `http://127.0.0.1:${match[1]}`, port: Number(match[1]), child})
    })
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)))
  })
}

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init)
  return (await response.json()) as T
}

async function post(url: string, body: unknown): Promise<unknown> {
  return json(url, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)})
}

function stopAll(): void {
  for (const child of children.splice(0)) child.kill('SIGKILL')
}

/** A port number free now (the locals must know the central's before it starts). */
async function freePort(): Promise<number> {
  const net = await import('node:net')
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const {port} = server.address() as import('node:net').AddressInfo
      server.close(() => resolve(port))
    })
  })
}

async function throughput(): Promise<void> {
  const port = await freePort()
  const central = `http://127.0.0.1:${port}`
  const locals: Array<{name: string; url: string}> = []
  for (let i = 0; i < 4; i++) {
    const name = `l${i}`
    const local = await start(['site', 'local', '--name', name, '--data-dir', path.join(dir, `t-${name}`), '--central', central, '--generate-ms', '0'])
    for (let from = 0; from < PER_LOCAL; from += 1000) {
      const docs = Array.from({length: Math.min(1000, PER_LOCAL - from)}, (_, k) => ({_id: `${name}:${from + k}`, owner: name, at: new Date().toISOString(), value: from + k}))
      await post(`${local.url}/records/_bulk_docs`, {docs})
    }
    locals.push({name, url: local.url})
  }
  const total = PER_LOCAL * 4
  const launched = performance.now()
  const c = await start(['site', 'central', '--port', String(port), '--data-dir', path.join(dir, 't-central'), '--poll-ms', '100', ...locals.flatMap((l) => ['--local', `${l.name}=${l.url}`])])
  const began = performance.now()
  for (;;) {
    const info = await json<{doc_count: number}>(`${c.url}/records`)
    if (info.doc_count >= total) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const seconds = (performance.now() - began) / 1000
  console.log(
    `pull, 4 locals × ${PER_LOCAL} records into the central: ${total} records in ${seconds.toFixed(2)} s from its listening line = ${Math.round(total / seconds)} records/s (its start-up before that: ${((began - launched) / 1000).toFixed(2)} s)`,
  )
  stopAll()
}

function summary(ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return `median ${at(0.5).toFixed(0)} ms, p90 ${at(0.9).toFixed(0)} ms, min ${sorted[0].toFixed(0)} ms, max ${sorted[sorted.length - 1].toFixed(0)} ms (${ms.length} records)`
}

async function latency(label: string, flags: string[], spreadMs: number): Promise<void> {
  const port = await freePort()
  const central = `http://127.0.0.1:${port}`
  const a = await start(['site', 'local', '--name', 'a', '--data-dir', path.join(dir, `${label}-a`), '--central', central, '--generate-ms', '0'])
  const b = await start(['site', 'local', '--name', 'b', '--data-dir', path.join(dir, `${label}-b`), '--central', central, '--generate-ms', '0'])
  const c = await start(['site', 'central', '--port', String(port), '--data-dir', path.join(dir, `${label}-central`), '--local', `a=${a.url}`, '--local', `b=${b.url}`, ...flags])
  // Let the first contact (push, pull) pass.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const samples: number[] = []
  let seed = 12_345
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    await new Promise((resolve) => setTimeout(resolve, 50 + (seed % spreadMs))) // creations land anywhere in the poll cycle
    const local = i % 2 === 0 ? a : b
    const since = (await json<{update_seq: number}>(`${c.url}/records`)).update_seq
    const id = `${i % 2 === 0 ? 'a' : 'b'}:${Date.now() * 1000 + i}`
    const created = performance.now()
    await json(`${local.url}/records/${encodeURIComponent(id)}`, {method: 'PUT', headers: {'content-type': 'application/json'}, body: JSON.stringify({owner: id.split(':')[0], at: new Date().toISOString(), value: i})})
    for (let seq = since; ; ) {
      const changes = await json<{results: Array<{id: string}>; last_seq: number}>(`${c.url}/records/_changes?feed=longpoll&since=${seq}&timeout=60000`)
      if (changes.results.some((r) => r.id === id)) break
      seq = changes.last_seq
    }
    samples.push(performance.now() - created)
  }
  console.log(`latency creation → central, ${label}: ${summary(samples)}`)
  stopAll()
}

try {
  if (!existsSync(path.join(root, 'dist/commands/site/central.js'))) spawnSync('npm', ['run', 'build'], {cwd: root, stdio: 'ignore'})
  console.log(`load average before: ${loadavg().map((n) => n.toFixed(2)).join(' ')}`)
  await throughput()
  await latency('--poll-ms 5000 (default)', [], 5000)
  await latency('--longpoll', ['--longpoll'], 1000)
  console.log(`load average after: ${loadavg().map((n) => n.toFixed(2)).join(' ')}`)
} finally {
  stopAll()
  rmSync(dir, {recursive: true, force: true})
}
