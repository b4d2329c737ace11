/**
 * XML-RPC faults shared by the coordinator, the servers and the client.
 *
 * Protocol-level codes follow the XML-RPC "fault code interoperability"
 * convention (-32700 … -32603). Application faults carry small positive codes,
 * and their fault strings start with the error name (`ErrWrongServer: …`),
 * which is what DESIGN.md §6 fixes and what clients test.
 */
export const FaultCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL: -32603,
  WRONG_SERVER: 1,
  NO_KEY: 2,
  UNAVAILABLE: 3,
} as const

/** The application error names that start a fault string. */
export type ErrName = 'ErrWrongServer' | 'ErrNoKey' | 'ErrUnavailable'

const CODE_OF: Record<ErrName, number> = {
  ErrWrongServer: FaultCode.WRONG_SERVER,
  ErrNoKey: FaultCode.NO_KEY,
  ErrUnavailable: FaultCode.UNAVAILABLE,
}

/** An XML-RPC fault, thrown by a handler or received by a client. */
export class RpcFault extends Error {
  constructor(
    readonly faultCode: number,
    readonly faultString: string,
  ) {
    super(faultString)
    this.name = 'RpcFault'
  }

  /** True when the fault string names this application error. */
  is(name: ErrName): boolean {
    return this.faultString === name || this.faultString.startsWith(name + ':')
  }
}

/** A fault for one of the application errors, e.g. `ErrNoKey: "a"`. */
export function appFault(name: ErrName, detail: string): RpcFault {
  return new RpcFault(CODE_OF[name], `${name}: ${detail}`)
}

export function invalidParams(detail: string): RpcFault {
  return new RpcFault(FaultCode.INVALID_PARAMS, `invalid params: ${detail}`)
}

// XML 1.0 cannot carry these code points, so a value holding one could never
// be sent on (to a backup or back to a client); refuse it at the door.
const XML_ILLEGAL = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u

/** The text with every character XML cannot carry replaced by U+FFFD. */
export function xmlSafe(text: string): string {
  return text.replace(new RegExp(XML_ILLEGAL.source, 'gu'), '\uFFFD')
}

/** The kinds of parameter a method can declare. */
export type ParamKind = 'string' | 'int' | 'struct'
type KindType<K extends ParamKind> = K extends 'string' ? string : K extends 'int' ? number : Record<string, unknown>
export type ParamTypes<T extends readonly ParamKind[]> = {[I in keyof T]: KindType<T[I]>}

/**
 * Checks the positional parameters of a call against `required` and then
 * `optional` kinds; throws an `invalid params` fault (-32602) on any mismatch.
 */
export function checkParams<const R extends readonly ParamKind[], const O extends readonly ParamKind[] = []>(
  method: string,
  params: unknown[],
  required: R,
  optional: O = [] as unknown as O,
): [...ParamTypes<R>, ...Partial<ParamTypes<O>>] {
  const max = required.length + optional.length
  if (params.length < required.length || params.length > max) {
    const range = required.length === max ? `${max}` : `${required.length}-${max}`
    throw invalidParams(`${method} takes ${range} parameters, got ${params.length}`)
  }
  const kinds = [...required, ...optional]
  params.forEach((value, i) => checkValue(`${method} parameter ${i + 1}`, value, kinds[i]))
  return params as [...ParamTypes<R>, ...Partial<ParamTypes<O>>]
}

/** Checks one value against a kind; throws an `invalid params` fault. */
export function checkValue(what: string, value: unknown, kind: ParamKind): void {
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') throw invalidParams(`${what} must be a string`)
      if (XML_ILLEGAL.test(value)) throw invalidParams(`${what} holds a character XML cannot carry`)
      return
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalidParams(`${what} must be an int`)
      return
    case 'struct':
      if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date || Buffer.isBuffer(value)) {
        throw invalidParams(`${what} must be a struct`)
      }
  }
}

/** A struct member, only if the struct itself holds it (never an inherited one). */
export function member(struct: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(struct, name) ? struct[name] : undefined
}
