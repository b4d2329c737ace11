/**
 * The project's own small native addon (native.c, built by `npm run build`
 * into dist/vendor/native.node), loaded once on first use. Null when it is
 * not there (not built: no C compiler, not Linux) or does not load: its
 * callers then do without (page-cache.ts, direct-write.ts).
 */
import {createRequire} from 'node:module'

export interface NativeAddon {
  /** posix_fadvise(fd, offset, length, POSIX_FADV_DONTNEED): 0 or the errno. */
  drop(fd: number, offset: number, length: number): number
  /** The address of the buffer's first byte modulo 4096. */
  misalignment(buffer: Buffer): number
  /** A file region sent to a socket from a pool thread (pread and send); see native.c and send-file.ts. Absent from an addon built before it. */
  sendFile?(socketFd: number, fileFd: number, offset: number, length: number, idleMs: number, callback: (errno: number, sent: number) => void): unknown
  /** Stops a sendFile() in progress (it then reports ECANCELED). */
  abortSend(control: unknown): void
}

let addon: NativeAddon | null | undefined

export function nativeAddon(): NativeAddon | null {
  if (addon !== undefined) return addon
  try {
    // From dist/base/ (the CLI) and from src/base/ (tests run the sources) alike.
    const loaded = createRequire(import.meta.url)('../../dist/vendor/native.node') as Partial<NativeAddon>
    addon = typeof loaded.drop === 'function' && typeof loaded.misalignment === 'function' ? (loaded as NativeAddon) : null
  } catch {
    addon = null
  }
  return addon
}
