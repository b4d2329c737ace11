import {Args, Flags} from '@oclif/core'

import {NotFoundError, OperationFailedError, TemporaryError, TimeoutError, UsageError} from '../../base/index.js'
import {BaseCommand} from '../../cli/base-command.js'
import {fqdn} from '../../dns/names.js'
import {formatEndpoint, parseEndpoint, QueryTimeoutError, queryOnce} from '../../dns/transport.js'
import {formatRr} from '../../dns/present.js'
import {makeQuery, Rcode, RCODE_NAMES, typeCodes, type Message, type Rr} from '../../dns/wire.js'

interface RecordJson {
  name: string
  type: string
  class: string
  ttl: number
  data: unknown
}

export interface ResolveResult {
  name: string
  type: string
  server: string
  transport: 'udp' | 'tcp'
  rcode: string
  flags: {aa: boolean; tc: boolean; rd: boolean; ra: boolean}
  answers: RecordJson[]
  authorities: RecordJson[]
  additionals: RecordJson[]
}

export default class DnsResolve extends BaseCommand<typeof DnsResolve> {
  static summary = 'Ask a DNS server for the records of a name.'
  static description = `Sends one query (recursion desired unless --no-recurse) over UDP, and again over TCP if the answer comes back truncated; --tcp uses TCP only. Prints the answer records dig-style, one per line, or the whole answer with --json. Exit 0 with answers, or with none when the name exists without records of that type (NODATA: nothing on stdout, a note on stderr); 4 when the name does not exist (NXDOMAIN); 5 on a timeout or SERVFAIL; 1 when the server refuses.`

  static examples = [
    '<%= config.bin %> <%= command.id %> router.disk.test --server 127.0.0.1:5353',
    '<%= config.bin %> <%= command.id %> _disk._tcp.disk.test SRV --server 127.0.0.4:5353 --json',
    '<%= config.bin %> <%= command.id %> big.disk.test A --server 127.0.0.3:5353 --no-recurse --tcp',
  ]

  static args = {
    name: Args.string({description: 'Domain name to look up.', required: true}),
    type: Args.string({description: 'Record type (A, AAAA, NS, CNAME, SOA, SRV, TXT, MX, PTR, ANY).', default: 'A'}),
  }

  static flags = {
    server: Flags.string({char: 's', description: 'Server to ask, HOST:PORT.', default: '127.0.0.1:5353'}),
    recurse: Flags.boolean({description: 'Ask for recursion (RD); --no-recurse clears it.', default: true, allowNo: true}),
    tcp: Flags.boolean({description: 'Use TCP only.'}),
    timeout: Flags.integer({description: 'Milliseconds to wait for each try.', default: 2000, min: 1}),
  }

  async run(): Promise<ResolveResult> {
    const {args, flags} = this
    const type = args.type.toUpperCase()
    if (typeCodes.toType(type) === 0) throw new UsageError(`unknown record type: ${args.type}`)
    let server
    try {
      server = parseEndpoint(flags.server, 53)
    } catch (error) {
      throw new UsageError(`--server: ${(error as Error).message}`)
    }
    const query = makeQuery(0, args.name, type, {rd: flags.recurse})
    const where = formatEndpoint(server)
    let reply: {answer: Message; transport: 'udp' | 'tcp'}
    try {
      reply = await queryOnce(server, query, {timeoutMs: flags.timeout, tcp: flags.tcp})
    } catch (error) {
      if (error instanceof QueryTimeoutError) throw new TimeoutError(`no answer from ${where} for ${args.name} ${type}`)
      throw new TemporaryError(`cannot ask ${where}: ${(error as Error).message}`, {cause: error})
    }
    const {answer, transport} = reply
    const name = query.questions[0].name
    const rcode = RCODE_NAMES[answer.rcode] ?? `RCODE${answer.rcode}`
    if (answer.rcode === Rcode.NXDOMAIN) throw new NotFoundError(`${fqdn(name)}: no such domain`, 'file', {backendCode: 'NXDOMAIN'})
    if (answer.rcode === Rcode.SERVFAIL) throw new TemporaryError(`${where} could not resolve ${fqdn(name)} ${type}`, {backendCode: 'SERVFAIL'})
    if (answer.rcode !== Rcode.NOERROR) throw new OperationFailedError(`${where} did not answer ${fqdn(name)} ${type}`, {backendCode: rcode})

    if (!this.jsonEnabled()) this.print(answer, name, type, transport, where)
    return {
      name: fqdn(name),
      type,
      server: where,
      transport,
      rcode,
      flags: {aa: answer.aa, tc: answer.tc, rd: answer.rd, ra: answer.ra},
      answers: answer.answers.map(toJson),
      authorities: answer.authorities.map(toJson),
      additionals: answer.additionals.map(toJson),
    }
  }

  private print(answer: Message, name: string, type: string, transport: string, where: string): void {
    if (this.flags.verbose) {
      const flags = (['aa', 'tc', 'rd', 'ra'] as const).filter((flag) => answer[flag]).join(' ')
      this.log(`;; ${RCODE_NAMES[answer.rcode]} from ${where} over ${transport}; flags: qr ${flags}`)
    }
    for (const rr of answer.answers) this.log(formatRr(rr))
    if (this.flags.verbose) {
      for (const rr of answer.authorities) this.log(`;; AUTHORITY ${formatRr(rr)}`)
      for (const rr of answer.additionals) this.log(`;; ADDITIONAL ${formatRr(rr)}`)
    }
    if (answer.answers.length > 0) return
    const referral = answer.authorities.find((rr) => rr.type === 'NS')
    if (referral && !answer.aa) this.info(`no answer; referral to ${fqdn(referral.name)}`)
    else this.info(`${fqdn(name)} has no ${type} records (NODATA)`)
  }
}

function toJson(rr: Rr): RecordJson {
  return {name: fqdn(rr.name), type: rr.type, class: rr.klass === 1 ? 'IN' : String(rr.klass), ttl: rr.ttl, data: rr.data}
}
