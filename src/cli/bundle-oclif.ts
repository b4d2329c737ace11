/**
 * Writes dist/vendor/oclif-core.cjs after a build (`npm run build`): @oclif/core
 * and its dependencies in one CommonJS file, which bin/run.js puts in
 * require's cache under @oclif/core's own entry. Loading oclif's ~110 files
 * one by one (resolve, read, compile each) took about a third of a run; one
 * file loads in about half that time. Only the entry point uses the bundle:
 * tests that import src/ run oclif from node_modules as before.
 */
import {writeFile} from 'node:fs/promises'
import {createRequire} from 'node:module'

import {build} from 'esbuild'

const require = createRequire(import.meta.url)
const entry = require.resolve('@oclif/core')
const {version} = require('@oclif/core/package.json') as {version: string}
const out = new URL('../vendor/', import.meta.url)

await build({
  entryPoints: [entry],
  outfile: new URL('oclif-core.cjs', out).pathname,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // oclif requires these only to run a plugin's TypeScript sources in
  // development, and semver only for the engine check that bin/run.js turns
  // off: left out, they cost nothing to parse, and still load if ever needed.
  external: ['typescript', 'ts-node', 'tsx', 'semver'],
  banner: {js: `// @oclif/core ${version}, bundled by src/cli/bundle-oclif.ts. Generated: do not edit.`},
  logLevel: 'warning',
})
// bin/run.js uses the bundle only while node_modules holds this same version.
await writeFile(new URL('oclif-core.json', out), JSON.stringify({version}) + '\n')
console.log(`dist/vendor/oclif-core.cjs: @oclif/core ${version}`)
