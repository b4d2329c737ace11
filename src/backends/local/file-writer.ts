import fs from 'node:fs'
import {Writable} from 'node:stream'

/**
 * Bytes written between two background flushes. Each one is an fdatasync in
 * libuv's pool while the writes go on, so the disk writes the file while it
 * is still arriving and the fsync before the rename finds little left.
 */
const FLUSH_EVERY = 16 * 1024 * 1024

/**
 * Flushes an open file to disk in the background as it is written
 * (fdatasync every FLUSH_EVERY bytes, one at a time), then for good with
 * `finish` (fsync). A failed background flush is not reported: `finish`'s
 * fsync reports what matters.
 */
export class BackgroundFlush {
  private since = 0
  private running: Promise<void> | undefined

  constructor(private readonly fd: number) {}

  wrote(bytes: number): void {
    this.since += bytes
    if (this.since < FLUSH_EVERY || this.running) return
    this.since = 0
    this.running = new Promise<void>((resolve) => fs.fdatasync(this.fd, () => resolve())).finally(() => {
      this.running = undefined
    })
  }

  /** Resolves once no flush is in flight (the descriptor may then be closed). */
  async settled(): Promise<void> {
    await this.running
  }

  /** Waits for the background flush, then fsyncs: everything written is on disk. */
  async finish(): Promise<void> {
    await this.running
    await new Promise<void>((resolve, reject) => fs.fsync(this.fd, (error) => (error ? reject(error) : resolve())))
  }
}

/** Writes `buffers` in order at the file's offset, going on after a short write. */
function writeAll(fd: number, buffers: Buffer[], callback: (error: Error | null, bytes: number) => void, done = 0): void {
  fs.writev(fd, buffers, (error, written) => {
    if (error) return callback(error, done)
    let left = written
    while (buffers.length > 0 && left >= buffers[0].length) left -= buffers.shift()!.length
    if (buffers.length === 0) return callback(null, done + written)
    buffers[0] = buffers[0].subarray(left)
    writeAll(fd, buffers, callback, done + written)
  })
}

/**
 * A write stream onto a new file (opened on construction, closed when the
 * stream ends or is destroyed): chunks go out batched (writev of up to
 * 1 MiB), the file is flushed in the background as it grows, and the
 * stream's end fsyncs it. It emits 'close' only once no write or flush is
 * in flight and the descriptor is closed, so the file may then be removed.
 */
export class FileWriter extends Writable {
  private fd = -1
  private flush: BackgroundFlush | undefined
  private writing: Promise<void> | undefined

  constructor(
    private readonly path: string,
    private readonly flags = 'wx',
    private readonly mode = 0o644,
  ) {
    super({highWaterMark: 1 << 20})
  }

  override _construct(callback: (error?: Error | null) => void): void {
    fs.open(this.path, this.flags, this.mode, (error, fd) => {
      if (error) return callback(error)
      this.fd = fd
      this.flush = new BackgroundFlush(fd)
      callback()
    })
  }

  private run(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    this.writing = new Promise<void>((resolve) =>
      writeAll(this.fd, buffers, (error, bytes) => {
        this.flush!.wrote(bytes)
        resolve()
        callback(error)
      }),
    )
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.run([chunk], callback)
  }

  override _writev(chunks: Array<{chunk: Buffer}>, callback: (error?: Error | null) => void): void {
    this.run(
      chunks.map(({chunk}) => chunk),
      callback,
    )
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.flush!.finish().then(() => callback(), callback)
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    void Promise.all([this.writing, this.flush?.settled()]).then(() => {
      if (this.fd < 0) return callback(error)
      fs.close(this.fd, (closeError) => callback(error ?? closeError))
      this.fd = -1
    })
  }
}
