/**
 * Redis KEYS glob patterns: `*`, `?`, `[abc]`, `[^a-z]` and `\` escapes,
 * matched against the key's bytes (read as latin1, one char per byte).
 */
export function globToRegExp(pattern: string): RegExp {
  let out = '^'
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '*') out += '[\\s\\S]*'
    else if (c === '?') out += '[\\s\\S]'
    else if (c === '\\' && i + 1 < pattern.length) out += escape(pattern[++i])
    else if (c === '[') {
      const end = classEnd(pattern, i)
      if (end < 0) {
        out += '\\['
        continue
      }
      let body = pattern.slice(i + 1, end)
      let negate = false
      if (body.startsWith('^')) {
        negate = true
        body = body.slice(1)
      }
      out += `[${negate ? '^' : ''}${classBody(body)}]`
      i = end
    } else out += escape(c)
  }
  return new RegExp(out + '$')
}

function classEnd(pattern: string, start: number): number {
  for (let i = start + 1; i < pattern.length; i++) {
    if (pattern[i] === '\\') i++
    else if (pattern[i] === ']' && i > start + 1) return i
  }
  return -1
}

function classBody(body: string): string {
  let out = ''
  for (let i = 0; i < body.length; i++) {
    const c = body[i]
    if (c === '\\' && i + 1 < body.length) out += escape(body[++i])
    else if (c === '-' && out.length > 0 && i + 1 < body.length) out += '-'
    else out += escape(c)
  }
  return out
}

function escape(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? '\\' + c : c
}
