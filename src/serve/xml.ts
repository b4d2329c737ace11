import sax from 'sax'

/** One element of a request body, namespaces resolved. */
export interface XmlElement {
  ns: string
  local: string
  attributes: Array<{ns: string; local: string; prefix: string; value: string}>
  children: XmlNode[]
}
export type XmlNode = XmlElement | string

export class XmlError extends Error {}

/** Parses a whole request body (small: PROPFIND, PROPPATCH, LOCK) into elements; throws XmlError when it is not well-formed. */
export function parseXml(text: string): XmlElement {
  const parser = sax.parser(true, {xmlns: true})
  const stack: XmlElement[] = []
  let root: XmlElement | undefined
  let failure: Error | undefined
  parser.onerror = (error) => {
    failure ??= error
    // Keep sax from throwing on the next write.
    ;(parser as unknown as {error: null}).error = null
  }

  parser.onopentag = (node) => {
    const tag = node as sax.QualifiedTag
    if (tag.prefix && !tag.uri) failure ??= new Error(`unbound prefix ${tag.prefix}`)
    const element: XmlElement = {
      ns: tag.uri,
      local: tag.local,
      attributes: Object.values(tag.attributes)
        .filter((a) => a.prefix !== 'xmlns' && a.name !== 'xmlns')
        .map((a) => ({ns: a.uri, local: a.local, prefix: a.prefix, value: a.value})),
      children: [],
    }
    for (const a of Object.values(tag.attributes)) {
      // RFC 4918 / XML namespaces: a prefix may not be bound to the empty name.
      if (a.prefix === 'xmlns' && a.local !== '' && a.value === '') failure ??= new Error(`empty namespace for prefix ${a.local}`)
    }

    stack.at(-1)?.children.push(element)
    stack.push(element)
    root ??= element
  }

  parser.onclosetag = () => {
    stack.pop()
  }

  const onText = (text: string) => {
    const top = stack.at(-1)
    if (top) top.children.push(text)
    else if (text.trim() !== '') failure ??= new Error('text outside the root element')
  }

  parser.ontext = onText
  parser.oncdata = onText
  try {
    parser.write(text).close()
  } catch (error) {
    failure ??= error as Error
  }

  if (failure || !root || stack.length > 0) throw new XmlError(`malformed XML: ${failure?.message.split('\n')[0] ?? 'no root element'}`)
  return root
}

export function elements(node: XmlElement, ns?: string, local?: string): XmlElement[] {
  return node.children.filter(
    (child): child is XmlElement => typeof child !== 'string' && (ns === undefined || child.ns === ns) && (local === undefined || child.local === local),
  )
}

export function child(node: XmlElement, ns: string, local: string): XmlElement | undefined {
  return elements(node, ns, local)[0]
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;'})[c]!)
}

/** Serialises nodes with explicit namespace declarations on each element, so the result stands alone anywhere. */
export function serialize(nodes: XmlNode[]): string {
  let out = ''
  for (const node of nodes) {
    if (typeof node === 'string') {
      out += escapeXml(node)
      continue
    }

    out += `<${openTag(node)}>${serialize(node.children)}</${node.ns ? 'x:' : ''}${node.local}>`
  }

  return out
}

function openTag(node: XmlElement): string {
  let tag = node.ns ? `x:${node.local} xmlns:x="${escapeXml(node.ns)}"` : `${node.local} xmlns=""`
  let n = 0
  for (const a of node.attributes) {
    if (a.ns && a.ns !== 'http://www.w3.org/XML/1998/namespace') {
      n++
      tag += ` xmlns:a${n}="${escapeXml(a.ns)}" a${n}:${a.local}="${escapeXml(a.value)}"`
    } else {
      tag += ` ${a.prefix ? `${a.prefix}:` : ''}${a.local}="${escapeXml(a.value)}"`
    }
  }

  return tag
}

/** `{ns}local`, the key of a property. */
export function clark(ns: string, local: string): string {
  return `{${ns}}${local}`
}

export function parseClark(key: string): {ns: string; local: string} {
  const end = key.indexOf('}')
  return {ns: key.slice(1, end), local: key.slice(end + 1)}
}

/** A property element with its value, as a standalone fragment. */
export function propertyXml(key: string, value: string | undefined): string {
  const {ns, local} = parseClark(key)
  if (ns === 'DAV:') return value === undefined || value === '' ? `<D:${local}/>` : `<D:${local}>${value}</D:${local}>`
  const open = ns ? `R:${local} xmlns:R="${escapeXml(ns)}"` : `${local} xmlns=""`
  const close = ns ? `R:${local}` : local
  return value === undefined || value === '' ? `<${open}/>` : `<${open}>${value}</${close}>`
}
