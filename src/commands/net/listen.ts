import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {formatHostPort} from '../../net/address.js'
import {ReliableSocket} from '../../net/reliable-udp.js'
import {messageLine} from '../../net/text.js'

export default class NetListen extends BaseCommand<typeof NetListen> {
  static summary = 'Receive reliable-UDP messages and print each one.'
  static description = `Binds a reliable-UDP socket, acknowledges every data packet (again for a duplicate, which is printed only once) and prints each distinct message on stdout, one per line: the content as UTF-8, or "base64:" and padded base64 when it is not valid UTF-8 (or holds a line break). The "listening" banner and logs go to stderr. With --count N, exits 0 after N distinct messages, once the last acknowledgement has been sent; otherwise runs until SIGINT/SIGTERM.`

  static examples = [
    '<%= config.bin %> <%= command.id %> --port 9000',
    '<%= config.bin %> <%= command.id %> --port 9000 --host 0.0.0.0 --count 10',
  ]

  static flags = {
    port: Flags.integer({char: 'p', description: 'UDP port (0 picks a free one).', required: true, min: 0, max: 65_535}),
    host: Flags.string({description: 'Address to listen on.', default: '127.0.0.1'}),
    count: Flags.integer({char: 'n', description: 'Exit after this many distinct messages.', min: 1}),
  }

  async run(): Promise<{received: number}> {
    const {flags} = this
    const socket = new ReliableSocket()
    const bound = await socket.bind(flags.port, flags.host)
    this.info(`listening udp ${formatHostPort(bound.address, bound.port)}`)
    const stop = (): void => void socket.close()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    let received = 0
    try {
      for await (const message of socket) {
        received++
        if (!this.jsonEnabled()) process.stdout.write(messageLine(message.data) + '\n')
        if (flags.verbose) this.info(`message ${received} from ${formatHostPort(message.address, message.port)}, ${message.data.length} bytes`)
        if (flags.count !== undefined && received >= flags.count) break
      }
    } finally {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      // close() waits for acknowledgements still queued in the kernel.
      await socket.close()
    }
    const {duplicates, malformed} = socket.stats
    if (flags.verbose) this.info(`received ${received}, duplicates ${duplicates}, malformed ${malformed}`)
    return {received}
  }
}
