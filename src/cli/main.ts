import {flush, run as oclifRun} from '@oclif/core'

import {reportError} from './report-error.js'

/**
 * The entry point of bin/run.js. oclif's own top-level handler wraps lines
 * and adds a `Code:` line; errors that escape a command (an unknown command,
 * say) come through here instead and get the one-line treatment.
 */
export async function run(argv: string[], root: string, options: {development?: boolean} = {}): Promise<void> {
  try {
    // `root` is the package's folder. In development the command files are
    // the truth, not a manifest that the last build wrote.
    await oclifRun(argv, options.development ? {root, ignoreManifest: true} : {root})
    await flush()
  } catch (error) {
    reportError(error, {
      json: argv.includes('--json'),
      verbose: argv.includes('-v') || argv.includes('--verbose'),
    })
  }
}
