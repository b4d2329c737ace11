/**
 * An RFC 1035 §5 master-file parser: $ORIGIN, $TTL, $INCLUDE, parentheses
 * across lines, `;` comments, quoted strings with \" and \DDD escapes,
 * blank owners (the previous owner), `@`, relative names, TTL and class in
 * either order, and BIND's TTL units (1h30m, 2d, 1w).
 *
 * Record types: SOA, NS, A, AAAA, CNAME, PTR, MX, SRV, TXT.
 */
import {readFileSync} from 'node:fs'
import {isIPv4, isIPv6} from 'node:net'
import {dirname, resolve as resolvePath} from 'node:path'

import {absolute, canonical, ROOT} from './names.js'
import {CLASS_IN, type Rr, type RrData} from './wire.js'

export class ZoneParseError extends Error {
  constructor(message: string, readonly file: string, readonly line: number) {
    super(`${file}:${line}: ${message}`)
    this.name = 'ZoneParseError'
  }
}

interface Token {
  text: string
  quoted: boolean
}

interface Entry {
  tokens: Token[]
  /** The line began with white space: the owner is the previous one. */
  blankOwner: boolean
  line: number
}

const TTL_UNITS: Record<string, number> = {s: 1, m: 60, h: 3600, d: 86400, w: 604800}
const CLASSES = new Set(['IN', 'CH', 'CS', 'HS'])

/** Parses a TTL: plain seconds or BIND units ("1h30m"); undefined if it is not one. */
export function parseTtl(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text)
  if (!/^(\d+[smhdw])+$/i.test(text)) return undefined
  let total = 0
  for (const [, amount, unit] of text.toLowerCase().matchAll(/(\d+)([smhdw])/g)) total += Number(amount) * TTL_UNITS[unit]
  return total
}

/** Splits master-file text into entries (one per logical line). */
function tokenize(text: string, file: string): Entry[] {
  const entries: Entry[] = []
  let tokens: Token[] = []
  let blankOwner = false
  let entryLine = 1
  let line = 1
  let depth = 0
  let atLineStart = true
  let i = 0

  const endEntry = (): void => {
    if (tokens.length > 0) entries.push({tokens, blankOwner, line: entryLine})
    tokens = []
  }

  while (i < text.length) {
    const c = text[i]
    if (c === '\n') {
      line++
      i++
      if (depth === 0) {
        endEntry()
        atLineStart = true
      }
      continue
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      if (atLineStart && depth === 0 && tokens.length === 0) blankOwner = true
      atLineStart = false
      i++
      continue
    }
    if (atLineStart) {
      blankOwner = false
      atLineStart = false
    }
    if (tokens.length === 0 && depth === 0) entryLine = line
    if (c === ';') {
      while (i < text.length && text[i] !== '\n') i++
      continue
    }
    if (c === '(') {
      depth++
      i++
      continue
    }
    if (c === ')') {
      if (depth === 0) throw new ZoneParseError('unbalanced ")"', file, line)
      depth--
      i++
      continue
    }
    if (c === '"') {
      const start = line
      let value = ''
      i++
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\n') line++
        if (text[i] === '\\' && i + 1 < text.length) {
          const digits = text.slice(i + 1, i + 4)
          if (/^\d{3}$/.test(digits)) {
            value += String.fromCharCode(Number(digits))
            i += 4
          } else {
            value += text[i + 1]
            i += 2
          }
          continue
        }
        value += text[i++]
      }
      if (i >= text.length) throw new ZoneParseError('unterminated quoted string', file, start)
      i++
      tokens.push({text: value, quoted: true})
      continue
    }
    let word = ''
    while (i < text.length && !' \t\r\n;()"'.includes(text[i])) {
      if (text[i] === '\\' && i + 1 < text.length) {
        word += text.slice(i, i + 2)
        i += 2
        continue
      }
      word += text[i++]
    }
    tokens.push({text: word, quoted: false})
  }
  if (depth !== 0) throw new ZoneParseError('unbalanced "("', file, line)
  endEntry()
  return entries
}

interface ParseState {
  origin: string
  defaultTtl?: number
  lastTtl?: number
  lastOwner?: string
  file: string
  depth: number
}

function parseNumber(text: string | undefined, what: string, state: ParseState, line: number, max = 0xffffffff): number {
  if (text === undefined || !/^\d+$/.test(text) || Number(text) > max) {
    throw new ZoneParseError(`bad ${what}: ${text ?? '(missing)'}`, state.file, line)
  }
  return Number(text)
}

function parseRdata(type: string, args: Token[], state: ParseState, line: number): RrData {
  const fail = (message: string): never => {
    throw new ZoneParseError(`${type}: ${message}`, state.file, line)
  }
  const words = args.map((token) => token.text)
  const name = (index: number): string => {
    if (words[index] === undefined) fail('missing name')
    return absolute(words[index], state.origin)
  }
  const expect = (count: number): void => {
    if (words.length !== count) fail(`expected ${count} fields, got ${words.length}`)
  }

  switch (type) {
    case 'A':
      expect(1)
      if (!isIPv4(words[0])) fail(`not an IPv4 address: ${words[0]}`)
      return words[0]
    case 'AAAA':
      expect(1)
      if (!isIPv6(words[0])) fail(`not an IPv6 address: ${words[0]}`)
      return words[0]
    case 'NS':
    case 'CNAME':
    case 'PTR':
      expect(1)
      return name(0)
    case 'MX':
      expect(2)
      return {preference: parseNumber(words[0], 'MX preference', state, line, 0xffff), exchange: name(1)}
    case 'SRV':
      expect(4)
      return {
        priority: parseNumber(words[0], 'SRV priority', state, line, 0xffff),
        weight: parseNumber(words[1], 'SRV weight', state, line, 0xffff),
        port: parseNumber(words[2], 'SRV port', state, line, 0xffff),
        target: name(3),
      }
    case 'SOA': {
      expect(7)
      const times = words.slice(2).map((word, index) => {
        const value = index === 0 ? parseNumber(word, 'SOA serial', state, line) : parseTtl(word)
        if (value === undefined) fail(`bad time value: ${word}`)
        return value as number
      })
      const [serial, refresh, retry, expire, minimum] = times
      return {mname: name(0), rname: name(1), serial, refresh, retry, expire, minimum}
    }
    case 'TXT':
      if (words.length === 0) fail('no strings')
      for (const word of words) if (Buffer.byteLength(word) > 255) fail('a string is longer than 255 bytes')
      return words
    default:
      return fail('unsupported record type')
  }
}

function parseRecord(entry: Entry, state: ParseState): Rr {
  const tokens = [...entry.tokens]
  let owner: string
  if (entry.blankOwner) {
    if (state.lastOwner === undefined) throw new ZoneParseError('no previous owner name', state.file, entry.line)
    owner = state.lastOwner
  } else {
    owner = absolute(tokens.shift()!.text, state.origin)
  }
  state.lastOwner = owner

  let ttl: number | undefined
  let type: string | undefined
  while (tokens.length > 0 && type === undefined) {
    const word = tokens.shift()!.text
    const upper = word.toUpperCase()
    const asTtl = ttl === undefined ? parseTtl(word) : undefined
    if (asTtl !== undefined) ttl = asTtl
    else if (CLASSES.has(upper)) {
      if (upper !== 'IN') throw new ZoneParseError(`class ${upper} is not served`, state.file, entry.line)
    } else type = upper
  }
  if (type === undefined) throw new ZoneParseError('no record type', state.file, entry.line)

  const data = parseRdata(type, tokens, state, entry.line)
  if (ttl !== undefined) state.lastTtl = ttl
  else ttl = state.defaultTtl ?? state.lastTtl ?? (type === 'SOA' ? (data as {minimum: number}).minimum : undefined)
  if (ttl === undefined) throw new ZoneParseError('no TTL and no $TTL', state.file, entry.line)
  return {name: owner, type, klass: CLASS_IN, ttl, data}
}

function parseText(text: string, state: ParseState, out: Rr[]): void {
  for (const entry of tokenize(text, state.file)) {
    const head = entry.blankOwner ? undefined : entry.tokens[0]
    const directive = head && !head.quoted && head.text.startsWith('$') ? head.text.toUpperCase() : undefined
    if (directive === undefined) {
      out.push(parseRecord(entry, state))
      continue
    }
    const arg = entry.tokens[1]?.text
    if (arg === undefined) throw new ZoneParseError(`${directive} needs an argument`, state.file, entry.line)
    if (directive === '$ORIGIN') state.origin = absolute(arg, state.origin)
    else if (directive === '$TTL') {
      const ttl = parseTtl(arg)
      if (ttl === undefined) throw new ZoneParseError(`bad $TTL: ${arg}`, state.file, entry.line)
      state.defaultTtl = ttl
    } else if (directive === '$INCLUDE') {
      if (state.depth > 8) throw new ZoneParseError('$INCLUDE nested too deep', state.file, entry.line)
      const file = resolvePath(dirname(state.file), arg)
      const origin = entry.tokens[2] ? absolute(entry.tokens[2].text, state.origin) : state.origin
      const inner: ParseState = {...state, file, origin, depth: state.depth + 1}
      parseText(readFileSync(file, 'utf8'), inner, out)
    } else throw new ZoneParseError(`unknown directive ${directive}`, state.file, entry.line)
  }
}

/**
 * Parses master-file text into records. `origin` is the starting $ORIGIN
 * (default: the root); `file` names the source in error messages and anchors
 * $INCLUDE paths.
 */
export function parseMasterFile(text: string, options: {origin?: string; file?: string} = {}): Rr[] {
  const out: Rr[] = []
  parseText(text, {origin: canonical(options.origin ?? ROOT), file: options.file ?? '(zone)', depth: 0}, out)
  return out
}
