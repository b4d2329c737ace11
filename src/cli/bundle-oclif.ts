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

import {build, type Plugin} from 'esbuild'

const require = createRequire(import.meta.url)
const entry = require.resolve('@oclif/core')
const {version} = require('@oclif/core/package.json') as {version: string}
const out = new URL('../vendor/', import.meta.url)

/**
 * Dependencies of oclif that its module bodies require at load but that a
 * command run from the manifest never calls: command discovery by glob
 * (tinyglobby, which also loads picomatch and fdir), plugin patterns
 * (minimatch), help templates (ejs), spinner frames (cli-spinners). In the
 * bundle, each `require` of them returns a proxy that loads the real module
 * on first use. oclif (compiled TypeScript) only reads their properties at
 * call time; `__esModule` is answered from the module as it is at build time,
 * so interop helpers do not load it early.
 */
const LAZY = ['tinyglobby', 'minimatch', 'ejs', 'cli-spinners']
const oclifRequire = createRequire(entry)
const lazyRequires: Plugin = {
  name: 'lazy-requires',
  setup(plugins) {
    const filter = new RegExp(`^(${LAZY.join('|')})$`)
    plugins.onResolve({filter}, (args) =>
      (args.pluginData as {real?: boolean} | undefined)?.real ? undefined : {path: args.path, namespace: 'lazy', pluginData: {dir: args.resolveDir}},
    )
    plugins.onLoad({filter: /.*/, namespace: 'lazy'}, (args) => {
      const esModule = (oclifRequire(args.path) as {__esModule?: boolean}).__esModule === true
      const name = JSON.stringify(args.path)
      return {
        loader: 'js',
        resolveDir: (args.pluginData as {dir: string}).dir,
        pluginData: {real: true},
        contents: `let real
const load = () => (real ??= require(${name}))
module.exports = new Proxy({}, {
  get: (_, key) => (key === '__esModule' ? ${esModule} : load()[key]),
  has: (_, key) => key in load(),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, key) => {
    const found = Reflect.getOwnPropertyDescriptor(load(), key)
    return found && {...found, configurable: true}
  },
})
`,
      }
    })
  },
}

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
  plugins: [lazyRequires],
  banner: {js: `// @oclif/core ${version}, bundled by src/cli/bundle-oclif.ts. Generated: do not edit.`},
  logLevel: 'warning',
})
// bin/run.js uses the bundle only while node_modules holds this same version.
await writeFile(new URL('oclif-core.json', out), JSON.stringify({version}) + '\n')
console.log(`dist/vendor/oclif-core.cjs: @oclif/core ${version}`)
