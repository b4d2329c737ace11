import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {ReplicationClient} from '../../replication/client.js'

export default class ReplicationGet extends BaseCommand<typeof ReplicationGet> {
  static summary = 'Print a key from the replicated store.'
  static description =
    'Asks the coordinator for the master and reads KEY there, retrying through failover until --timeout. Prints exactly the value (a newline is added only when stdout is a terminal). Exit 4 if the key is missing, 5 when the deadline passes.'

  static examples = ['<%= config.bin %> <%= command.id %> color --coordinator http://127.0.0.1:7000/']
  static args = {key: Args.string({description: 'The key.', required: true})}
  static flags = {
    coordinator: Flags.string({description: 'The coordinator, as a URL or HOST:PORT.', required: true}),
    timeout: Flags.integer({description: 'Overall deadline in milliseconds.', default: 10_000, min: 1}),
  }

  async run(): Promise<{key: string; value: string}> {
    const {key} = this.args
    const client = new ReplicationClient({coordinator: this.flags.coordinator, timeoutMs: this.flags.timeout})
    let value: string
    try {
      value = await client.get(key)
    } finally {
      client.close()
    }
    if (!this.jsonEnabled()) process.stdout.write(process.stdout.isTTY ? value + '\n' : value)
    return {key, value}
  }
}
