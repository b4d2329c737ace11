#!/usr/bin/env -S node --import tsx
// Runs the TypeScript sources directly (no build step), for development:
// in development mode oclif maps dist/commands to src/commands. CommonJS
// like bin/run.js (bin/package.json), which it mirrors.
const path = require('node:path')

process.env.UV_THREADPOOL_SIZE ??= '12'
process.env.NODE_ENV = 'development'
import('../src/cli/main.ts').then(async ({run}) => {
  await run(process.argv.slice(2), path.join(__dirname, '..'), {development: true})
  process.exit()
})
