/**
 * One RESP connection on the server side (router or storage server): parses
 * requests, hands them to a dispatcher, and writes the replies back in request
 * order even when later requests finish first (pipelining).
 */
import type net from 'node:net'

import {OK, ProtocolError, RequestParser, error, type BufferPool, type Encoded} from './resp.js'
import {MAX_VALUE_BYTES} from './resp.js'

/** Per-connection state a dispatcher may read and change. */
export interface Session {
  /** The SELECTed database, 0–15. */
  db: number
}

export type Dispatch = (args: Buffer[], session: Session) => Encoded | Promise<Encoded>

const TOO_LARGE = error(`ERR value too large (max ${MAX_VALUE_BYTES} bytes)`)
/** Stop reading from a client with this many replies owed, until they drain. */
const MAX_IN_FLIGHT = 4096
/** Reply parts above this are reported to `written` (smaller ones are never pooled). */
const WRITTEN_MIN_BYTES = 64 * 1024

interface Slot {
  done: boolean
  reply: Encoded | null
}

/**
 * Serves RESP on an accepted socket until it closes; large bulk arguments
 * come from `pool` when given. `written` is told of every large part of a
 * reply once the socket has written it (and holds it no longer).
 */
export function serveConnection(socket: net.Socket, dispatch: Dispatch, pool?: BufferPool, written?: (part: Buffer) => void): void {
  const parser = new RequestParser({pool})
  const session: Session = {db: 0}
  const slots: Slot[] = []
  let head = 0
  let closing = false
  let paused = false
  socket.setNoDelay(true)

  const writePart = (part: Buffer): void => {
    if (written && part.length > WRITTEN_MIN_BYTES) socket.write(part, () => written(part))
    else socket.write(part)
  }
  const write = (reply: Encoded): void => {
    if (Array.isArray(reply)) for (const part of reply) writePart(part)
    else writePart(reply)
  }

  const flush = (): void => {
    if (socket.destroyed) return
    socket.cork()
    while (head < slots.length && slots[head].done) {
      write(slots[head].reply as Encoded)
      slots[head++] = undefined as unknown as Slot
    }
    if (head === slots.length) {
      slots.length = 0
      head = 0
    }
    socket.uncork()
    if (closing && head === slots.length) socket.end()
    if (paused && slots.length - head < MAX_IN_FLIGHT / 2 && !socket.writableNeedDrain) {
      paused = false
      socket.resume()
    }
  }

  let flushScheduled = false
  const scheduledFlush = (): void => {
    flushScheduled = false
    flush()
  }

  const answer = (reply: Encoded | Promise<Encoded>): void => {
    if (!(reply instanceof Promise)) {
      if (head === slots.length) {
        write(reply)
        return
      }
      slots.push({done: true, reply})
      return
    }
    const slot: Slot = {done: false, reply: null}
    slots.push(slot)
    const settle = (value: Encoded): void => {
      slot.reply = value
      slot.done = true
      // Replies finishing in the same tick leave in one write.
      if (!flushScheduled) {
        flushScheduled = true
        process.nextTick(scheduledFlush)
      }
    }
    reply.then(settle, (failure: Error) =>
      settle(error(failure.message.startsWith('ERR') || /^[A-Z]+ /.test(failure.message) ? failure.message : `ERR ${failure.message}`)),
    )
  }

  socket.on('data', (chunk: Buffer) => {
    if (closing) return
    let requests
    try {
      requests = parser.feed(chunk)
    } catch (failure) {
      const message = failure instanceof ProtocolError ? failure.message : 'Protocol error'
      closing = true
      answer(error(`ERR ${message}`))
      flush()
      return
    }
    socket.cork()
    for (const request of requests) {
      if (closing) break
      if (request.oversize) {
        answer(TOO_LARGE)
        continue
      }
      if (request.args[0].length === 4 && request.args[0].toString('latin1').toUpperCase() === 'QUIT') {
        closing = true
        answer(OK)
        break
      }
      try {
        answer(dispatch(request.args, session))
      } catch (failure) {
        answer(error(`ERR ${(failure as Error).message}`))
      }
    }
    socket.uncork()
    if (closing) flush()
    if (!paused && (slots.length - head > MAX_IN_FLIGHT || socket.writableNeedDrain)) {
      paused = true
      socket.pause()
    }
  })
  socket.on('drain', () => flush())
  socket.on('error', () => socket.destroy())
}
