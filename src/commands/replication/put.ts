import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {ReplicationClient} from '../../replication/client.js'

export default class ReplicationPut extends BaseCommand<typeof ReplicationPut> {
  static summary = 'Set a key in the replicated store.'
  static description =
    'Asks the coordinator for the master and puts KEY=VALUE there, retrying through failover until --timeout with one request id, so the put takes effect once. Prints nothing on success; exit 5 when the deadline passes.'

  static examples = ['<%= config.bin %> <%= command.id %> color blue --coordinator http://127.0.0.1:7000/ --timeout 5000']
  static args = {
    key: Args.string({description: 'The key.', required: true}),
    value: Args.string({description: 'The value.', required: true}),
  }

  static flags = {
    coordinator: Flags.string({description: 'The coordinator, as a URL or HOST:PORT.', required: true}),
    timeout: Flags.integer({description: 'Overall deadline in milliseconds.', default: 10_000, min: 1}),
  }

  async run(): Promise<{key: string; value: string}> {
    const {key, value} = this.args
    const client = new ReplicationClient({coordinator: this.flags.coordinator, timeoutMs: this.flags.timeout})
    try {
      await client.put(key, value)
    } finally {
      client.close()
    }
    return {key, value}
  }
}
