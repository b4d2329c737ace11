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

/**
 * A reply that a dispatcher settles later by callback: the cheap alternative
 * to a Promise on a hot path (one object, no microtasks). Listeners run
 * synchronously when it settles.
 */
export class Later {
  done = false
  reply: Encoded | null = null
  private listener: (() => void) | null = null
  private more: Array<() => void> | null = null

  settle(reply: Encoded): void {
    if (this.done) return
    this.done = true
    this.reply = reply
    const first = this.listener
    const more = this.more
    this.listener = null
    this.more = null
    if (first) first()
    if (more) for (const listener of more) listener()
  }

  /** Settles with the error reply of a failure (as a rejected Promise would be answered). */
  fail(failure: Error): void {
    this.settle(errorReply(failure))
  }

  /** Runs `listener` once settled (at once if it is). */
  whenDone(listener: () => void): void {
    if (this.done) listener()
    else if (!this.listener) this.listener = listener
    else (this.more ??= []).push(listener)
  }

  /** A Later settled by a Promise's outcome. */
  static from(promise: Promise<Encoded>): Later {
    const later = new Later()
    promise.then(
      (reply) => later.settle(reply),
      (failure: Error) => later.fail(failure),
    )
    return later
  }
}

/** The error reply for a failure: its message if it starts with a code word, else `ERR message`. */
export function errorReply(failure: Error): Buffer {
  const message = String(failure?.message ?? failure)
  return error(message.startsWith('ERR') || /^[A-Z]+ /.test(message) ? message : `ERR ${message}`)
}

export type Dispatch = (args: Buffer[], session: Session) => Encoded | Promise<Encoded> | Later

const TOO_LARGE = error(`ERR value too large (max ${MAX_VALUE_BYTES} bytes)`)
/** Stop reading from a client with this many replies owed, until they drain. */
const MAX_IN_FLIGHT = 4096
/** Reply parts above this are reported to `written` (smaller ones are never pooled). */
const WRITTEN_MIN_BYTES = 64 * 1024

interface Slot {
  done: boolean
  reply: Encoded | null
}

/** Replies up to this size that are ready together are joined into one buffer (one write, no writev). */
const JOIN_LIMIT = 64 * 1024

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
    // The ready replies: one small one is written as it is; several small
    // ones are joined first (a stream's cork/uncork costs more than a copy
    // of a few hundred bytes); large ones go out uncopied, corked together.
    let end = head
    let bytes = 0
    let small = true
    while (end < slots.length && slots[end].done) {
      const reply = slots[end].reply as Encoded
      if (Array.isArray(reply)) small = false
      else bytes += reply.length
      end++
    }
    if (end - head === 1 && small) {
      write(slots[head].reply as Encoded)
      slots[head++] = undefined as unknown as Slot
    } else if (end > head && small && bytes <= JOIN_LIMIT) {
      const out = Buffer.allocUnsafe(bytes)
      let offset = 0
      for (; head < end; head++) {
        offset += (slots[head].reply as Buffer).copy(out, offset)
        slots[head] = undefined as unknown as Slot
      }
      socket.write(out)
    } else if (end > head) {
      socket.cork()
      for (; head < end; head++) {
        write(slots[head].reply as Encoded)
        slots[head] = undefined as unknown as Slot
      }
      socket.uncork()
    }
    if (head === slots.length) {
      slots.length = 0
      head = 0
    }
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

  // Replies finishing in the same tick leave in one write.
  const settled = (): void => {
    if (!flushScheduled) {
      flushScheduled = true
      process.nextTick(scheduledFlush)
    }
  }

  const answer = (reply: Encoded | Promise<Encoded> | Later): void => {
    if (reply instanceof Later) {
      if (reply.done && head === slots.length) {
        write(reply.reply as Encoded)
        return
      }
      slots.push(reply)
      if (!reply.done) reply.whenDone(settled)
      return
    }
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
      settled()
    }
    reply.then(settle, (failure: Error) => settle(errorReply(failure)))
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
    // Several requests in one chunk (a pipeline) may answer at once: their replies leave in one write.
    const cork = requests.length > 1
    if (cork) socket.cork()
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
    if (cork) socket.uncork()
    if (closing) flush()
    if (!paused && (slots.length - head > MAX_IN_FLIGHT || socket.writableNeedDrain)) {
      paused = true
      socket.pause()
    }
  })
  socket.on('drain', () => flush())
  socket.on('error', () => socket.destroy())
}
