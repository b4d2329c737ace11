import {Errors} from '@oclif/core'

import {DiskError, ExitCode, exitCodeFor} from '../base/index.js'

export interface ReportOptions {
  json: boolean
  verbose: boolean
}

export interface ErrorJson {
  error: {code: string; message: string; exitCode: number}
}

/** Collapses a possibly multi-line message (oclif's parser writes several) into one line. */
function oneLine(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .join('; ')
}

/** Describes any thrown value as {code, message, exitCode}, the contract of DESIGN.md §2. */
export function describeError(error: unknown): ErrorJson['error'] {
  if (error instanceof DiskError) {
    return {code: error.code, message: oneLine(error.line), exitCode: error.exitCode}
  }

  if (error instanceof Errors.CLIError) {
    const exit = error.oclif?.exit ?? ExitCode.USAGE
    return {code: exit === ExitCode.USAGE ? 'EUSAGE' : 'EOTHER', message: oneLine(error.message), exitCode: exit}
  }

  const message = error instanceof Error ? error.message : String(error)
  const code = (error as {code?: unknown})?.code
  return {code: typeof code === 'string' ? code : 'EOTHER', message: oneLine(message), exitCode: exitCodeFor(error)}
}

/**
 * Prints an error the one way the CLI contract allows: a single `Error: …`
 * line on stderr, or `{"error": …}` on stdout with --json, and sets the exit
 * code to match. Stack traces only with --verbose.
 */
export function reportError(error: unknown, options: ReportOptions): number {
  if (error instanceof Errors.ExitError) {
    process.exitCode = error.oclif.exit
    return error.oclif.exit ?? 0
  }

  const described = describeError(error)
  if (options.json) {
    process.stdout.write(JSON.stringify({error: described}, null, 2) + '\n')
  } else {
    process.stderr.write(`Error: ${described.message}\n`)
  }

  if (options.verbose && error instanceof Error && error.stack) {
    process.stderr.write(error.stack + '\n')
  }

  process.exitCode = described.exitCode
  return described.exitCode
}
