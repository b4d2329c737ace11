import sax from 'sax'

/** One `<D:response>` of a PROPFIND multistatus, with the DAV: properties we use. */
export interface DavResource {
  /** The href as sent, percent-decoded path part only. */
  href: string
  collection: boolean
  size: number | null
  modified: string | null
  quotaAvailable?: number
  quotaUsed?: number
  /** The status of the propstat that held the properties, or of the response. */
  status: number
}

const DAV = 'DAV:'

/** Status code of an HTTP status line `HTTP/1.1 200 OK`. */
function statusOf(line: string): number {
  const match = /^\s*HTTP\/\d(?:\.\d)?\s+(\d{3})/.exec(line)
  return match ? Number(match[1]) : 0
}

function hrefPath(href: string): string {
  let p = href.trim()
  // Absolute URLs: keep the path.
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(p)
  if (absolute) p = absolute[1] ?? '/'
  try {
    return decodeURIComponent(p)
  } catch {
    return p
  }
}

/**
 * Parses a 207 multistatus (RFC 4918 §14.16) with sax in namespace mode, so
 * any prefix for `DAV:` works. Only successful propstats count for values.
 */
export function parseMultistatus(xml: string): DavResource[] {
  const parser = sax.parser(true, {xmlns: true, trim: false})
  const out: DavResource[] = []
  const stack: string[] = []
  let text = ''
  let current: DavResource | undefined
  let prop: {collection: boolean; size: number | null; modified: string | null; quotaAvailable?: number; quotaUsed?: number} | undefined
  let propstatStatus = 0
  let error: Error | undefined
  parser.onerror = (e) => {
    error = e
  }

  parser.onopentag = (node) => {
    const tag = node as sax.QualifiedTag
    const name = tag.uri === DAV ? tag.local : `{${tag.uri}}${tag.local}`
    stack.push(name)
    text = ''
    if (name === 'response') current = {href: '', collection: false, size: null, modified: null, status: 0}
    else if (name === 'propstat') {
      prop = {collection: false, size: null, modified: null}
      propstatStatus = 0
    } else if (name === 'collection' && stack.at(-2) === 'resourcetype' && prop) prop.collection = true
  }

  parser.ontext = (t) => {
    text += t
  }

  parser.oncdata = (t) => {
    text += t
  }

  parser.onclosetag = () => {
    const name = stack.pop()
    const parent = stack.at(-1)
    if (!current) return
    if (name === 'href' && parent === 'response') current.href = hrefPath(text)
    else if (name === 'status' && parent === 'response') current.status = statusOf(text)
    else if (name === 'status' && parent === 'propstat') propstatStatus = statusOf(text)
    else if (prop && parent === 'prop') {
      if (name === 'getcontentlength') {
        const n = Number(text.trim())
        prop.size = text.trim() !== '' && Number.isFinite(n) ? n : null
      } else if (name === 'quota-available-bytes' || name === 'quota-used-bytes') {
        const n = Number(text.trim())
        if (text.trim() !== '' && Number.isFinite(n)) prop[name === 'quota-used-bytes' ? 'quotaUsed' : 'quotaAvailable'] = n
      } else if (name === 'getlastmodified') {
        const time = Date.parse(text.trim())
        prop.modified = Number.isNaN(time) ? null : new Date(time).toISOString()
      }
    } else if (name === 'propstat' && prop) {
      if (propstatStatus >= 200 && propstatStatus < 300) {
        current.collection ||= prop.collection
        current.size ??= prop.size
        current.modified ??= prop.modified
        current.quotaAvailable ??= prop.quotaAvailable
        current.quotaUsed ??= prop.quotaUsed
        current.status = propstatStatus
      }

      prop = undefined
    } else if (name === 'response') {
      out.push(current)
      current = undefined
    }

    text = ''
  }

  parser.write(xml).close()
  if (error) throw error
  return out
}
