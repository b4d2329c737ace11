#!/usr/bin/env node
// On load, @oclif/core checks the Node version against its own engines range
// with semver: 47 more modules on every run, for a check that package.json's
// own engines (stricter than oclif's) already makes. Skip it, and leave the
// environment of child processes as it was. The import is dynamic so that the
// variable is set before oclif loads.
const ownSwitch = process.env.OCLIF_DISABLE_ENGINE_WARNING === undefined
if (ownSwitch) process.env.OCLIF_DISABLE_ENGINE_WARNING = '1'
const {run} = await import('../dist/cli/main.js')
if (ownSwitch) delete process.env.OCLIF_DISABLE_ENGINE_WARNING

await run(process.argv.slice(2), import.meta.url)
// The command is done and its output flushed. Exit now rather than when the
// last timer fires: redis-parser keeps a 50 ms interval alive for seconds
// after a large reply, to shrink its buffer pool.
process.exit()
