#!/usr/bin/env -S node --import tsx
// Runs the TypeScript sources directly (no build step), for development:
// in development mode oclif maps dist/commands to src/commands.
process.env.NODE_ENV = 'development'
const {run} = await import('../src/cli/main.ts')
await run(process.argv.slice(2), import.meta.url, {development: true})
process.exit()
