import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {configFilePath} from '../cli/file-command.js'
import {ConfigFile} from '../config/config-file.js'
import {loadDotEnv} from '../config/settings.js'

export default class Login extends BaseCommand<typeof Login> {
  static summary = 'Get a Yandex.Disk token by the OAuth device flow.'
  static description = `Asks Yandex OAuth for a code, prints it with the page to enter it on, waits (polling at the interval the server gives) until it is confirmed, and stores the token as yandex.token in the config file (mode 0600). A denied or expired code exits 7; no answer from Yandex OAuth exits 5. YANDEX_OAUTH_URL overrides the endpoint base (default https://oauth.yandex.ru).`

  static examples = [
    '<%= config.bin %> <%= command.id %> --client-id 0123456789abcdef',
    'YANDEX_CLIENT_ID=0123456789abcdef <%= config.bin %> <%= command.id %>',
  ]

  static flags = {
    'client-id': Flags.string({description: 'OAuth app id (else YANDEX_CLIENT_ID).'}),
    'client-secret': Flags.string({description: 'OAuth app secret, if the app has one (else YANDEX_CLIENT_SECRET).'}),
  }

  async run(): Promise<{stored: string}> {
    loadDotEnv()
    const {deviceLogin} = await import('../auth/index.js')
    const scale = Number(process.env.DISK_OAUTH_SECOND_MS ?? 1000)
    const token = await deviceLogin({
      clientId: this.flags['client-id'] ?? process.env.YANDEX_CLIENT_ID ?? '',
      clientSecret: this.flags['client-secret'] ?? process.env.YANDEX_CLIENT_SECRET,
      oauthUrl: process.env.YANDEX_OAUTH_URL,
      secondMs: Number.isFinite(scale) && scale >= 0 ? scale : 1000,
      // The code is what the user needs: shown even with --quiet, on stderr so stdout stays data.
      prompt: (code) => process.stderr.write(`Open ${code.verification_url} and enter the code: ${code.user_code}\nWaiting for confirmation…\n`),
      log: (message) => {
        if (this.flags.verbose) process.stderr.write(message + '\n')
      },
    })
    const file = configFilePath(this)
    await new ConfigFile(file).set('yandex.token', token)
    this.info(`logged in; token stored in ${file}`)
    return {stored: file}
  }
}
