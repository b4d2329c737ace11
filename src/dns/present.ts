/** Records as dig prints them. */
import {className, type MxData, type Rr, type SoaData, type SrvData} from './wire.js'

/** dig-style presentation of RDATA. */
export function formatData(rr: Pick<Rr, 'type' | 'data'>): string {
  const data = rr.data
  if (data === null) return ''
  switch (rr.type) {
    case 'NS':
    case 'CNAME':
    case 'PTR':
    case 'DNAME':
      return `${data as string}.`.replace(/^\.\.$/, '.')
    case 'SOA': {
      const soa = data as SoaData
      return `${soa.mname}. ${soa.rname}. ${soa.serial} ${soa.refresh} ${soa.retry} ${soa.expire} ${soa.minimum}`
    }
    case 'SRV': {
      const srv = data as SrvData
      return `${srv.priority} ${srv.weight} ${srv.port} ${srv.target}.`
    }
    case 'MX': {
      const mx = data as MxData
      return `${mx.preference} ${mx.exchange}.`
    }
    case 'TXT':
      return (data as string[]).map((part) => JSON.stringify(part)).join(' ')
    default:
      return Buffer.isBuffer(data) ? `\\# ${data.length} ${data.toString('hex')}` : String(data)
  }
}

/** One record as dig prints it: `name. TTL IN TYPE RDATA`. */
export function formatRr(rr: Rr): string {
  const owner = rr.name === '.' ? '.' : `${rr.name}.`
  return `${owner}\t${rr.ttl}\t${className(rr.klass).replace(/^UNKNOWN_/, 'CLASS')}\t${rr.type}\t${formatData(rr)}`
}
