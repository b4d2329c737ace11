/**
 * Writes dist/vendor/oclif-core.cjs after a build (`npm run build`): @oclif/core
 * and its dependencies in one CommonJS file, which bin/run.js puts in
 * require's cache under @oclif/core's own entry. Loading oclif's ~110 files
 * one by one (resolve, read, compile each) took about a third of a run; one
 * file loads in about half that time. Only the entry point uses the bundle:
 * tests that import src/ run oclif from node_modules as before.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import path from 'node:path'

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
 *
 * The real modules are not in the bundle: on first use they are required
 * from node_modules, from the directory of the oclif file that requires them
 * (so a copy nested under @oclif/core is found as before). Inside the bundle
 * they were ~240 KB (of 660) that every run read and pre-parsed for nothing.
 */
const LAZY = ['tinyglobby', 'minimatch', 'ejs', 'cli-spinners']
const oclifRequire = createRequire(entry)
const oclifRoot = path.dirname(require.resolve('@oclif/core/package.json'))
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
      const dir = (args.pluginData as {dir: string}).dir
      // Where the requiring file is, inside @oclif/core's package, to resolve from there at run time.
      const from = JSON.stringify(path.relative(oclifRoot, path.join(dir, 'index.js')).split(path.sep).join('/'))
      return {
        loader: 'js',
        resolveDir: dir,
        pluginData: {real: true},
        // require.resolve of a variable, and a require made by createRequire: esbuild leaves both to run time.
        contents: `let real
const load = () => {
  if (real) return real
  const id = '@oclif/core/package.json'
  const {createRequire} = require('node:module')
  const {join, dirname} = require('node:path')
  real = createRequire(join(dirname(require.resolve(id)), ${from}))(${name})
  return real
}
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

/**
 * oclif sorts the manifest's commands on every run with localeCompare,
 * whose first call builds ICU's collator: 7 ms of each run (a fifth of
 * what oclif costs), to order a list of lowercase ASCII ids the same way a
 * plain comparison does (checked on this project's ids). The bundle gets
 * the plain comparison; when oclif's code changes and the line is not
 * found, the bundle is left as built.
 */
const bundled = new URL('oclif-core.cjs', out)
const LOCALE_SORT = '.sort((a, b) => a.id.localeCompare(b.id))'
const code = await readFile(bundled, 'utf8')
if (code.split(LOCALE_SORT).length === 2) await writeFile(bundled, code.replace(LOCALE_SORT, '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'))
else console.log('dist/vendor/oclif-core.cjs: the command sort was not found once; left with localeCompare')
// bin/run.js uses the bundle only while node_modules holds this same version.
await writeFile(new URL('oclif-core.json', out), JSON.stringify({version}) + '\n')
console.log(`dist/vendor/oclif-core.cjs: @oclif/core ${version}`)
