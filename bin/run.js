#!/usr/bin/env node
import {run} from '../dist/cli/main.js'

await run(process.argv.slice(2), import.meta.url)
// The command is done and its output flushed. Exit now rather than when the
// last timer fires: redis-parser keeps a 50 ms interval alive for seconds
// after a large reply, to shrink its buffer pool.
process.exit()
