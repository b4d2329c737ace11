/**
 * Dropping what a process has read from the OS page cache behind it
 * (posix_fadvise DONTNEED), as rclone does with every local file it reads.
 *
 * Why: a file read once (the source of an upload, a piece sent to a
 * downloader) otherwise stays cached, and every new page the next write
 * needs (the copy being written) is memory the kernel has to find elsewhere.
 * On the machines we measure on (a VM whose host takes back memory the guest
 * leaves free), writing 1 GiB into new page-cache pages costs 1.0–1.7 s of
 * system time, into pages freed just before 0.35–0.45 s (a copy loop with
 * and without dropping its source, six alternations). Dropping clean pages
 * loses no data; dirty ones are only scheduled for writeback.
 *
 * Node has no binding for posix_fadvise: the project's small Node-API addon
 * (native.c) does it, built by `npm run build` when a C compiler is there.
 * Without it (not built, another system), `dropFromPageCache` does nothing
 * and says so by returning false: callers lose only the speed.
 */
import {nativeAddon} from './native.js'

/**
 * Asks the kernel to drop `length` bytes of the open file `fd` from `offset`
 * (0 bytes: to the end) from the page cache. True if it was asked and
 * accepted; false without the addon, for a descriptor or range that is not
 * one (a closed FileHandle's -1), or when the kernel refused (a pipe, a
 * closed descriptor). Never throws: the drop is advice.
 */
export function dropFromPageCache(fd: number, offset = 0, length = 0): boolean {
  const native = nativeAddon()
  if (!native) return false
  // A closed FileHandle's fd is -1 (a read that ends after its stream was destroyed): nothing to drop.
  if (!Number.isSafeInteger(fd) || fd < 0 || !Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) return false
  return native.drop(fd, offset, length) === 0
}

/** Whether the addon is loaded (and drops can be asked for at all). */
export function canDropFromPageCache(): boolean {
  return nativeAddon() !== null
}
