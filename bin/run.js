#!/usr/bin/env node
import {createRequire, Module} from 'node:module'

const require = createRequire(import.meta.url)

// On load, @oclif/core checks the Node version against its own engines range
// with semver: 47 more modules on every run, for a check that package.json's
// own engines (stricter than oclif's) already makes. Skip it, and leave the
// environment of child processes as it was. The imports are dynamic so that
// the variable is set before oclif loads.
const ownSwitch = process.env.OCLIF_DISABLE_ENGINE_WARNING === undefined
if (ownSwitch) process.env.OCLIF_DISABLE_ENGINE_WARNING = '1'
preloadOclifBundle()
const {run} = await import('../dist/cli/main.js')
if (ownSwitch) delete process.env.OCLIF_DISABLE_ENGINE_WARNING

await run(process.argv.slice(2), import.meta.url)
// The command is done and its output flushed. Exit now rather than when the
// last timer fires: redis-parser keeps a 50 ms interval alive for seconds
// after a large reply, to shrink its buffer pool.
process.exit()

/**
 * Serves `@oclif/core` from the one-file bundle the build writes (see
 * src/cli/bundle-oclif.ts) by putting it in require's cache under oclif's own
 * entry, where every `import ... from '@oclif/core'` finds it. Without the
 * bundle, or when node_modules holds another oclif version, oclif loads from
 * node_modules as usual.
 */
function preloadOclifBundle() {
  let bundled
  try {
    bundled = require('../dist/vendor/oclif-core.json')
  } catch {
    return
  }

  const entry = require.resolve('@oclif/core')
  if (require.cache[entry] || bundled.version !== require('@oclif/core/package.json').version) return
  const module = new Module(entry)
  module.filename = entry
  module.exports = require('../dist/vendor/oclif-core.cjs')
  module.loaded = true
  require.cache[entry] = module
}
