/**
 * The bottom layer's one door: what every layer may use, importing nothing
 * of ours. The typed errors with their exit codes (DESIGN.md §2), the
 * clean-up of partial files and remote uploads on SIGINT/SIGTERM, the
 * bounded worker pool, file writes in system calls of at most 64 KiB,
 * dropping read files from the page cache, direct (O_DIRECT) writes, and
 * files sent to sockets from a pool thread.
 */
export * from './errors.js'
export {cleanUpOnInterrupt, interrupted, trackAbort, trackPartial} from './interrupt.js'
export {prefetch, readAhead, runPool} from './pool.js'
export {FILE_WRITE_BYTES, writeAllAtSync} from './file-write.js'
export {canDropFromPageCache, dropFromPageCache} from './page-cache.js'
export {alignedBuffer, DIRECT_ALIGN, DirectWriter, openDirect} from './direct-write.js'
export {canSendFile, fileRegionOf, markFileRegion, MAX_SENDS, sendFile, sendsInProgress, type FileRegion} from './send-file.js'
