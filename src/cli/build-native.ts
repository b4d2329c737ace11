/**
 * Builds dist/vendor/native.node after a build (`npm run build`): the small
 * Node-API addon of src/base/native.c, compiled with the system's C compiler
 * (`$CC`, else `cc`) against Node's own headers. Linux only (what it wraps,
 * posix_fadvise's DONTNEED and direct I/O, is used there). When it cannot be
 * built (no compiler, no headers, another system), the build goes on:
 * everything works without it, only slower (src/base/native.ts).
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const source = path.join(root, 'src', 'base', 'native.c')
const target = path.join(root, 'dist', 'vendor', 'native.node')

/** Where node_api.h is: beside this Node (…/bin/node → …/include/node), or under npm's nodedir. */
function headers(): string | undefined {
  const candidates = [path.resolve(path.dirname(process.execPath), '..', 'include', 'node')]
  if (process.env.npm_config_nodedir) candidates.push(path.join(process.env.npm_config_nodedir, 'include', 'node'))
  return candidates.find((dir) => existsSync(path.join(dir, 'node_api.h')))
}

function skip(why: string): void {
  rmSync(target, {force: true})
  console.log(`dist/vendor/native.node: not built (${why}); files are read and written without it, more slowly`)
}

const include = headers()
if (process.platform !== 'linux') skip(`${process.platform} is not Linux`)
else if (!existsSync(source)) skip(`${source} is missing`)
else if (!include) skip("Node's headers (node_api.h) were not found")
else {
  mkdirSync(path.dirname(target), {recursive: true})
  const compiler = process.env.CC || 'cc'
  const result = spawnSync(compiler, ['-O2', '-Wall', '-shared', '-fPIC', `-I${include}`, '-o', target, source], {encoding: 'utf8'})
  if (result.error || result.status !== 0) skip(`${compiler} failed: ${(result.error?.message ?? result.stderr).trim().split('\n')[0]}`)
  else console.log(`dist/vendor/native.node: built with ${compiler} against ${include}`)
}
