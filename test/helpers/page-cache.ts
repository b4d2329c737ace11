// What of a file is in the page cache, read back with util-linux's `fincore`
// (the tests of src/base/page-cache.ts and of the readers that use it).
import {execFileSync} from 'node:child_process'

/** Bytes of `file` in the page cache. */
export function cachedBytes(file: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], {encoding: 'utf8'}).trim())
}
