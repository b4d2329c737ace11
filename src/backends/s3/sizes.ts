/** Range size of a parallel read through the SDK (openRead): about 4 × 8 MiB buffered at most. */
export const RANGE_SIZE = 8 * 1024 * 1024
/** Files from this size on are read as parallel ranges (rclone's multi-thread download does the same from 250 MiB). */
export const PARALLEL_READ_FROM = 4 * RANGE_SIZE
