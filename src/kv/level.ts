/**
 * classic-level (LevelDB), the one door every store here opens it through.
 *
 * After a build, dist/vendor/classic-level.cjs holds classic-level's
 * JavaScript in one file and the path of the native addon that fits this
 * machine (src/cli/bundle-level.ts): loading it costs one file and one
 * dlopen instead of 34 CommonJS modules and node-gyp-build's directory scan
 * (about 20 ms of CPU on every command that opens a store, such as a sync
 * to the embedded cluster). The package itself is loaded instead when there
 * is no bundle (tests run from src/), when the bundle was made for another
 * classic-level version, platform or Node ABI, or when it fails to load.
 */
import {createRequire} from 'node:module'
import path from 'node:path'

import type * as ClassicLevelModule from 'classic-level'

type Module = typeof ClassicLevelModule
interface Stamp {
  version: string
  addon: string
  platform: string
  arch: string
  modules: string
}

const require = createRequire(import.meta.url)

/** Where classic-level came from: the build's bundle, or the package in node_modules. */
export let levelSource: 'bundle' | 'package' = 'package'

function load(): Module {
  let stamp: Stamp
  try {
    stamp = require('../vendor/classic-level.json') as Stamp
  } catch {
    return require('classic-level') as Module
  }

  try {
    const manifest = require.resolve('classic-level/package.json')
    const fits =
      stamp.platform === process.platform &&
      stamp.arch === process.arch &&
      stamp.modules === process.versions.modules &&
      (require(manifest) as {version: string}).version === stamp.version
    if (fits) {
      const bundled = (require('../vendor/classic-level.cjs') as (addon: string) => Module)(path.join(path.dirname(manifest), stamp.addon))
      levelSource = 'bundle'
      return bundled
    }
  } catch {
    // A missing addon or a broken bundle: the package still works.
  }

  return require('classic-level') as Module
}

export const {ClassicLevel} = load()
export type ClassicLevel<K = string, V = string> = ClassicLevelModule.ClassicLevel<K, V>
