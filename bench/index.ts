// `npm run bench`: runs every bench/*.bench.ts in turn, each in its own
// process, and prints what they print. A bench never fails the build on a
// number; a bench that crashes is reported and the next one still runs.
import {spawnSync} from 'node:child_process'
import {readdirSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const only = process.argv.slice(2)
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.bench.ts'))
  .filter((name) => only.length === 0 || only.some((word) => name.includes(word)))
  .sort()

for (const name of files) {
  console.log(`\n=== ${name}`)
  const result = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${name}`], {stdio: 'inherit'})
  if (result.status !== 0) console.log(`(${name} did not finish: exit ${result.status ?? result.signal})`)
}
