#!/usr/bin/env node
// A CommonJS file (bin/package.json): it runs before Node's ES module loader
// has read any file, so the settings below still apply to this process. The
// CLI itself is ES modules, imported below.
const {Module} = require('node:module')
const path = require('node:path')

// libuv's thread pool carries every file read, write and fsync of this
// process, and LevelDB's writes. Its default of 4 threads starved uploads
// into the embedded store: blob writes queued behind their own background
// fsyncs (see src/kv/blobs.ts). libuv reads the size when the pool first
// starts, which has not happened yet here (an ES module entry would have
// used the pool to read itself). A size the user chose is kept.
process.env.UV_THREADPOOL_SIZE ??= '12'

// On load, @oclif/core checks the Node version against its own engines range
// with semver: 47 more modules on every run, for a check that package.json's
// own engines (stricter than oclif's) already makes. Skip it, and leave the
// environment of child processes as it was. The import is dynamic so that
// the variable is set before oclif loads.
const ownSwitch = process.env.OCLIF_DISABLE_ENGINE_WARNING === undefined
if (ownSwitch) process.env.OCLIF_DISABLE_ENGINE_WARNING = '1'
preloadOclifBundle()

import('../dist/cli/main.js').then(async ({run}) => {
  if (ownSwitch) delete process.env.OCLIF_DISABLE_ENGINE_WARNING
  await run(process.argv.slice(2), path.join(__dirname, '..'))
  // The command is done and its output flushed. Exit now rather than when the
  // last timer fires: redis-parser keeps a 50 ms interval alive for seconds
  // after a large reply, to shrink its buffer pool.
  process.exit()
})

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
