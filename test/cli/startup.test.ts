import {spawn} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {expect} from 'chai'

import {BIN, cleanEnv, collect} from '../helpers/cli.js'

// What a run of the built CLI loads: ES modules through a resolve hook, and
// CommonJS modules from require's cache at exit. Each line of the log is one
// file path or URL.
const ESM_HOOKS = `
import {appendFileSync} from 'node:fs'
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context)
  appendFileSync(process.env.LOADED_LOG, result.url + '\\n')
  return result
}
`
const REGISTER = `
import {register} from 'node:module'
register(process.env.LOADED_HOOKS)
`
const CJS_AT_EXIT = `
const {appendFileSync} = require('node:fs')
process.on('exit', () => appendFileSync(process.env.LOADED_LOG, Object.keys(require.cache).join('\\n') + '\\n'))
`

describe('start-up: what a command loads', function () {
  this.timeout(60_000)
  let dir: string

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'disk-client-startup-'))
    writeFileSync(path.join(dir, 'hooks.mjs'), ESM_HOOKS)
    writeFileSync(path.join(dir, 'register.mjs'), REGISTER)
    writeFileSync(path.join(dir, 'at-exit.cjs'), CJS_AT_EXIT)
  })

  after(() => rmSync(dir, {recursive: true, force: true}))

  async function loadedBy(args: string[], env: NodeJS.ProcessEnv = {}, cwd = dir): Promise<{stdout: string; code: number | null; loaded: string[]}> {
    const log = path.join(dir, `loaded-${Date.now()}-${Math.random()}.log`)
    const child = spawn(
      process.execPath,
      ['--require', path.join(dir, 'at-exit.cjs'), '--import', pathToFileURL(path.join(dir, 'register.mjs')).href, BIN, ...args],
      {cwd, env: cleanEnv({...env, HOME: dir, LOADED_LOG: log, LOADED_HOOKS: pathToFileURL(path.join(dir, 'hooks.mjs')).href})},
    )
    const result = await collect(child)
    const loaded = readFileSync(log, 'utf8').split('\n').filter(Boolean)
    return {stdout: result.stdout, code: result.code, loaded}
  }

  const uses = (loaded: string[], part: string) => loaded.some((file) => file.includes(part))

  it('lists a local folder without loading the HTTP stack, the cluster, the protocols or a progress bar', async () => {
    const root = path.join(dir, 'local')
    const files = ['one.txt', 'two.txt', 'three.txt']
    mkdirSync(path.join(root, 'dir'), {recursive: true})
    for (const file of files) writeFileSync(path.join(root, 'dir', file), file)

    const {stdout, code, loaded} = await loadedBy(['ls', 'local:/dir'], {DISK_LOCAL_ROOT: root})
    expect(code).to.equal(0)
    expect(stdout.trim().split('\n').sort()).to.deep.equal([...files].sort())
    // The log sees what it should: the command, the backend, and oclif from the bundle.
    expect(uses(loaded, '/dist/commands/ls.js'), 'ls.js').to.equal(true)
    expect(uses(loaded, '/dist/backends/local/index.js'), 'local backend').to.equal(true)
    expect(uses(loaded, '/dist/vendor/oclif-core.cjs'), 'oclif bundle').to.equal(true)
    for (const part of [
      '/node_modules/axios/',
      '/node_modules/classic-level/',
      '/node_modules/redis-parser/',
      '/node_modules/xmlrpc/',
      '/node_modules/dns-packet/',
      '/node_modules/cli-progress/',
      '/node_modules/semver/',
      // oclif's glob stack (tinyglobby requires picomatch) loads only when commands are discovered without the manifest.
      '/node_modules/picomatch/',
      '/node_modules/dotenv/',
      '/node_modules/@oclif/core/lib/config/',
      '/dist/backends/yandex/',
      '/dist/backends/cluster/',
      '/dist/kv/',
      '/dist/replication/',
      '/dist/dns/',
      '/node_modules/sax/',
      '/dist/backends/webdav/',
      '/dist/serve/',
    ]) {
      expect(uses(loaded, part), part).to.equal(false)
    }
  })

  it('opens the embedded cluster with classic-level from the build\'s bundle and its addon by a fixed path (no node-gyp-build scan)', async () => {
    const src = path.join(dir, 'sync-src')
    mkdirSync(path.join(src, 'sub'), {recursive: true})
    for (const file of ['a.txt', 'sub/b.txt']) writeFileSync(path.join(src, file), file)
    const env = {DISK_DATA_DIR: path.join(dir, 'sync-data')}
    const sync = ['sync', `file:${src}`, 'cluster:/dst', '--json']

    const first = await loadedBy(sync, env)
    expect(first.code).to.equal(0)
    expect(JSON.parse(first.stdout)).to.include({copied: 2, deleted: 0, unchanged: 0})
    const again = await loadedBy(sync, env)
    expect(again.code).to.equal(0)
    expect(JSON.parse(again.stdout)).to.include({copied: 0, deleted: 0, unchanged: 2})
    for (const {loaded} of [first, again]) {
      expect(uses(loaded, '/dist/vendor/classic-level.cjs'), 'classic-level bundle').to.equal(true)
      expect(uses(loaded, '/node_modules/classic-level/prebuilds/'), 'the addon').to.equal(true)
      for (const part of ['/node_modules/classic-level/index.js', '/node_modules/abstract-level/', '/node_modules/node-gyp-build/']) {
        expect(uses(loaded, part), part).to.equal(false)
      }
    }
  })

  it("renders a command's help with its examples: oclif's template engine loads when help needs it", async () => {
    const {stdout, code, loaded} = await loadedBy(['ls', '--help'])
    expect(code).to.equal(0)
    expect(stdout).to.include('$ disk-client ls /photos --long')
    expect(stdout).to.not.include('<%')
    // ejs is not inside the oclif bundle: it is required from node_modules on first use.
    expect(uses(loaded, '/node_modules/ejs/'), 'ejs').to.equal(true)
    expect(uses(loaded, '/node_modules/picomatch/'), 'picomatch').to.equal(false)
  })

  it('reads .env from the working directory when there is one, real environment variables first', async () => {
    const root = path.join(dir, 'from-dotenv')
    mkdirSync(path.join(root, 'dir'), {recursive: true})
    writeFileSync(path.join(root, 'dir', 'only.txt'), 'x')
    const cwd = path.join(dir, 'project')
    mkdirSync(cwd, {recursive: true})
    writeFileSync(path.join(cwd, '.env'), `DISK_LOCAL_ROOT=${root}\n`)

    const fromFile = await loadedBy(['ls', 'local:/dir'], {}, cwd)
    expect(fromFile.code).to.equal(0)
    expect(fromFile.stdout.trim()).to.equal('only.txt')
    expect(uses(fromFile.loaded, '/node_modules/dotenv/'), 'dotenv').to.equal(true)

    const other = path.join(dir, 'from-env')
    mkdirSync(path.join(other, 'dir'), {recursive: true})
    writeFileSync(path.join(other, 'dir', 'env.txt'), 'x')
    const fromEnv = await loadedBy(['ls', 'local:/dir'], {DISK_LOCAL_ROOT: other}, cwd)
    expect(fromEnv.code).to.equal(0)
    expect(fromEnv.stdout.trim()).to.equal('env.txt')
  })
})
