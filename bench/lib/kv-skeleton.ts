// The floor of DESIGN §5's topology in Node: the least a router and its
// replicas could do for redis-benchmark's SET and GET, with none of the
// cluster's semantics (no versions, no ordering, no hints, no membership).
// bench/kv.bench.ts runs it beside redis-server and our router, so that a
// ratio of ours can be read against what any Node implementation of the
// same topology reaches on the same machine.
//
//   replica PORT level DIR   SETs kept in LevelDB (classic-level) by group
//                            commit, acknowledged once written (DESIGN §16);
//                            GETs answered from memory
//   replica PORT memory      the same with no LevelDB: SETs kept in a Map
//   router PORT NEED P1 P2…  each SET and GET sent whole to every replica
//                            (writes to one replica joined per turn of the
//                            event loop); the client's reply is the first
//                            replica's once NEED replicas have answered
//
// Not a server to use: it trusts its input and is only ever given
// redis-benchmark's commands.
import {rmSync} from 'node:fs'
import net from 'node:net'

import {ClassicLevel} from '../../src/kv/level.js'

/** The end of the RESP value that starts at `at` (arrays of bulk strings, bulk strings, simple lines), or -1 if incomplete. */
function valueEnd(buf: Buffer, at: number): number {
  const cr = buf.indexOf(13, at)
  if (cr < 0 || cr + 1 >= buf.length) return -1
  const type = buf[at]
  const n = Number(buf.toString('latin1', at + 1, cr))
  let next = cr + 2
  if (type === 0x24 /* $ */) return n < 0 ? next : next + n + 2 <= buf.length ? next + n + 2 : -1
  if (type !== 0x2a /* * */) return next
  for (let i = 0; i < n; i++) {
    next = valueEnd(buf, next)
    if (next < 0) return -1
  }
  return next
}

/** The bulk strings of the array command in buf[start, end). */
function args(buf: Buffer, start: number, end: number): Buffer[] {
  const out: Buffer[] = []
  let at = buf.indexOf(10, start) + 1
  while (at < end) {
    const cr = buf.indexOf(13, at)
    const n = Number(buf.toString('latin1', at + 1, cr))
    out.push(buf.subarray(cr + 2, cr + 2 + n))
    at = cr + 4 + n
  }
  return out
}

/** Calls `each(buf, start, end)` for every complete value in the stream; keeps the rest for the next chunk. */
function framer(each: (buf: Buffer, start: number, end: number) => void): (chunk: Buffer) => void {
  let pending: Buffer | undefined
  return (chunk) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk
    let at = 0
    for (let end = valueEnd(buf, 0); end >= 0; end = at < buf.length ? valueEnd(buf, at) : -1) {
      each(buf, at, end)
      at = end
    }
    pending = at < buf.length ? Buffer.from(buf.subarray(at)) : undefined
  }
}

const ONE = Buffer.from(':1\r\n')
const bulk = (value: Buffer | undefined): Buffer => (value ? Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n')]) : Buffer.from('$-1\r\n'))

function listen(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
}

async function replica(port: number, mode: string, dir?: string): Promise<void> {
  const values = new Map<string, Buffer>()
  let db: ClassicLevel<Buffer, Buffer> | undefined
  if (mode === 'level') {
    rmSync(dir!, {recursive: true, force: true})
    db = new ClassicLevel<Buffer, Buffer>(dir!, {keyEncoding: 'buffer', valueEncoding: 'buffer'})
    await db.open()
  }

  // Group commit: one LevelDB batch at a time; SETs arriving meanwhile join the next.
  let batch: Array<{type: 'put'; key: Buffer; value: Buffer}> = []
  let done: Array<() => void> = []
  let writing = false
  const commit = (): void => {
    if (writing || batch.length === 0) return
    writing = true
    const ops = batch
    const callbacks = done
    batch = []
    done = []
    db!.batch(ops).then(() => {
      writing = false
      for (const callback of callbacks) callback()
      commit()
    })
  }

  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    socket.on('error', () => {})
    // The replies to one chunk of commands leave together, and in the order
    // of the chunks: a chunk with a SET waits for the batch that holds it.
    const queue: Array<{replies: Buffer[]; ready: boolean}> = []
    const flush = (): void => {
      while (queue.length > 0 && queue[0].ready) socket.write(Buffer.concat(queue.shift()!.replies))
    }

    const frame = framer((buf, start, end) => {
      const [name, key, value] = args(buf, start, end)
      const chunk = queue.at(-1)!
      if ((name[0] | 0x20) !== 0x73 /* s: SET */) {
        chunk.replies.push(bulk(values.get(key.toString('latin1'))))
        return
      }

      const copy = Buffer.from(value)
      values.set(key.toString('latin1'), copy)
      chunk.replies.push(ONE)
      if (db) {
        batch.push({type: 'put', key, value: copy})
        if (chunk.ready) {
          chunk.ready = false
          done.push(() => {
            chunk.ready = true
            flush()
          })
        }
      }
    })
    socket.on('data', (data: Buffer) => {
      queue.push({replies: [], ready: true})
      frame(data)
      if (queue.at(-1)!.ready) flush()
      else commit()
    })
  })
  await listen(server, port)
}

async function router(port: number, need: number, replicaPorts: number[]): Promise<void> {
  const replicas = replicaPorts.map((replicaPort) => {
    const connection = net.connect(replicaPort, '127.0.0.1')
    connection.setNoDelay(true)
    const waiting: Array<(reply: Buffer) => void> = []
    let out: Buffer[] = []
    connection.on('data', framer((buf, start, end) => waiting.shift()!(buf.subarray(start, end))))
    return {
      send(command: Buffer, onReply: (reply: Buffer) => void): void {
        waiting.push(onReply)
        if (out.length === 0)
          setImmediate(() => {
            connection.write(out.length === 1 ? out[0] : Buffer.concat(out))
            out = []
          })
        out.push(command)
      },
    }
  })

  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    socket.on('error', () => {})
    socket.on(
      'data',
      framer((buf, start, end) => {
        // The command's name starts after "*N\r\n$L\r\n".
        const nameAt = buf.indexOf(10, buf.indexOf(10, start) + 1) + 1
        const first3 = buf.toString('latin1', nameAt, nameAt + 4).toUpperCase()
        const isSet = first3 === 'SET\r'
        if (!isSet && first3 !== 'GET\r') {
          // redis-benchmark asks CONFIG GET before it starts: an empty answer.
          socket.write(first3 === 'PING' ? '+PONG\r\n' : '*0\r\n')
          return
        }

        // Replicas answer in order and every command goes to each, so the
        // client's replies leave in its request order.
        const command = buf.subarray(start, end)
        let answered = 0
        let first: Buffer | undefined
        for (const replica of replicas)
          replica.send(command, (reply) => {
            first ??= Buffer.from(reply)
            if (++answered === need) socket.write(isSet ? '+OK\r\n' : first)
          })
      }),
    )
  })
  await listen(server, port)
}

const [role, port, ...rest] = process.argv.slice(2)
if (role === 'replica') await replica(Number(port), rest[0], rest[1])
else if (role === 'router') await router(Number(port), Number(rest[0]), rest.slice(1).map(Number))
else throw new Error('usage: kv-skeleton.ts replica PORT level DIR | replica PORT memory | router PORT NEED PORT…')
// Tell the parent this process listens.
process.stdout.write('ready\n')
