// Types for the `xmlrpc` package's own (de)serializer modules, which
// @types/xmlrpc does not describe. We use them directly so our HTTP layer can
// answer unknown methods and malformed bodies with faults (see rpc-server.ts).
declare module 'xmlrpc/lib/deserializer.js' {
  import type {Readable} from 'node:stream'

  class Deserializer {
    constructor(encoding?: string)
    deserializeMethodCall(
      stream: Readable,
      callback: (error: Error | null | undefined, methodName?: string, params?: unknown[]) => void,
    ): void
  }
  export = Deserializer
}

declare module 'xmlrpc/lib/serializer.js' {
  export function serializeMethodResponse(value: unknown): string
  export function serializeFault(fault: {faultCode: number; faultString: string}): string
}
