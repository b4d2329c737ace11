/**
 * Writes dist/vendor/classic-level.cjs after a build (`npm run build`):
 * classic-level's JavaScript and its dependencies (abstract-level,
 * level-transcoder, ...: 34 CommonJS files) in one file, loaded by
 * src/kv/level.ts. Its native addon is not searched for at run time
 * (node-gyp-build reads directories and parses every prebuild's name on
 * each start): the build asks node-gyp-build once which file fits this
 * machine and records its path inside the package; the bundle loads exactly
 * that file. `classic-level.json` holds what that choice depends on
 * (classic-level's version, platform, arch, Node's ABI); level.ts falls back
 * to the package itself when any of it differs or the bundle is missing.
 */
import {writeFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import path from 'node:path'

import {build, type Plugin} from 'esbuild'

const require = createRequire(import.meta.url)
const dir = path.dirname(require.resolve('classic-level/package.json'))
const {version} = require('classic-level/package.json') as {version: string}
const nodeGypBuild = createRequire(path.join(dir, 'index.js'))('node-gyp-build') as {path(dir: string): string}
const addon = path.relative(dir, nodeGypBuild.path(dir))
const out = new URL('../vendor/', import.meta.url)

/**
 * classic-level's binding.js (`require('node-gyp-build')(__dirname)`)
 * becomes a `require` of the addon path that the bundle's entry was given.
 */
const fixedBinding: Plugin = {
  name: 'fixed-binding',
  setup(plugins) {
    plugins.onLoad({filter: /[/\\]classic-level[/\\]binding\.js$/}, () => ({
      loader: 'js',
      contents: `module.exports = require(globalThis[Symbol.for('disk-client.classic-level.addon')])`,
    }))
  },
}

await build({
  stdin: {
    // The addon's absolute path is only known at run time (where the package is installed).
    contents: `module.exports = (addon) => {
  globalThis[Symbol.for('disk-client.classic-level.addon')] = addon
  try {
    return require('classic-level')
  } finally {
    delete globalThis[Symbol.for('disk-client.classic-level.addon')]
  }
}`,
    resolveDir: dir,
    loader: 'js',
  },
  outfile: new URL('classic-level.cjs', out).pathname,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  plugins: [fixedBinding],
  banner: {js: `// classic-level ${version}, bundled by src/cli/bundle-level.ts. Generated: do not edit.`},
  logLevel: 'warning',
})
const stamp = {version, addon, platform: process.platform, arch: process.arch, modules: process.versions.modules}
await writeFile(new URL('classic-level.json', out), JSON.stringify(stamp) + '\n')
console.log(`dist/vendor/classic-level.cjs: classic-level ${version}, addon ${addon}`)
