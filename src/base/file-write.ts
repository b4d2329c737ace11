/**
 * Writes into the page cache in system calls of at most 64 KiB.
 *
 * Linux (6.x) gives a buffered write page-cache folios sized by the write:
 * one write(2) of 1 MiB asks for large folios (contiguous high-order blocks
 * of free memory), writes of 64 KiB take small ones. On the virtual machine
 * we measure on, large writes into new pages cost far more: our reading is
 * that its free high-order blocks are the ones handed back to the host
 * (free page reporting), so touching them again costs a host page fault
 * (memory freed a second before is cheap again). 1 GiB written into a new
 * file, memory freed a few seconds before, took
 * 2.1–2.3 s of system time in 1 MiB or 4 MiB writes, 1.45 s in 512 KiB,
 * 0.7 s in 256 KiB and 0.2 s in 64 KiB or 128 KiB ones (one writer); with
 * three writers at once, 0.9–1.8 s each in 512 KiB writes and 0.16–0.24 s
 * in 64 KiB ones (docs/cluster-files.md, round 7). On a machine without the
 * effect, 64 KiB writes cost a few more system calls. `writev` is one write
 * for this purpose. Used where the writes run on the calling thread (a
 * download's file, a storage server's blobs): through libuv's pool, a
 * hand-off per 64 KiB costs more than it saves.
 */
import fs from 'node:fs'

/** The largest single write(2) into a file's page cache. */
export const FILE_WRITE_BYTES = 64 * 1024

/** Writes all of `data` at `position` on this thread, 64 KiB per call, going on after a short write. */
export function writeAllAtSync(fd: number, data: Uint8Array, position: number): void {
  for (let done = 0; done < data.length; ) {
    done += fs.writeSync(fd, data, done, Math.min(FILE_WRITE_BYTES, data.length - done), position + done)
  }
}
