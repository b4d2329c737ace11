import {Args, Flags} from '@oclif/core'

import {parseHostPort} from '../../net/address.js'
import {ReliableSocket} from '../../net/reliable-udp.js'
import {BaseCommand} from '../../cli/base-command.js'

export default class NetSend extends BaseCommand<typeof NetSend> {
  static summary = 'Send one reliable-UDP message and wait for its acknowledgement.'
  static description = `Sends MESSAGE (as UTF-8) in one data packet and retransmits it, with the adaptive timeout of RFC 6298 starting at 1 s and doubling, until it is acknowledged. Exits 0 on acknowledgement, 5 when --timeout passes or the retries are spent, and 2 for a bad address or a message too large for one datagram.`

  static examples = [
    '<%= config.bin %> <%= command.id %> 127.0.0.1:9000 "hello"',
    '<%= config.bin %> <%= command.id %> [::1]:9000 "hello" --timeout 3000 --retries 4',
  ]

  static args = {
    address: Args.string({description: 'The receiver, HOST:PORT or [IPV6]:PORT.', required: true}),
    message: Args.string({description: 'The message.', required: true}),
  }

  static flags = {
    timeout: Flags.integer({description: 'Overall deadline in milliseconds.', default: 10_000, min: 1}),
    retries: Flags.integer({description: 'Most retransmissions after the first transmission.', default: 8, min: 0}),
  }

  async run(): Promise<{acknowledged: true; id: number; transmissions: number; elapsedMs: number}> {
    const {address, message} = this.args
    const {host, port} = parseHostPort(address)
    const socket = new ReliableSocket()
    try {
      const receipt = await socket.sendTo(Buffer.from(message, 'utf8'), port, host, {timeoutMs: this.flags.timeout, retries: this.flags.retries})
      this.info(`acknowledged after ${receipt.transmissions} transmission(s), ${receipt.elapsedMs.toFixed(1)} ms`)
      return {acknowledged: true, ...receipt}
    } finally {
      await socket.close()
    }
  }
}
