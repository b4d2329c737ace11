// ntp-time's own index.d.ts declares classes but not the CommonJS export object the package has.
declare module 'ntp-time' {
  interface Packet {
    /** Offset, seconds. */
    t: number
    /** Round-trip delay, seconds. */
    d: number
  }
  class Client {
    constructor(server?: string, port?: number, options?: {timeout: number})
    syncTime(): Promise<Packet>
  }
  const ntp: {Client: typeof Client}
  export default ntp
}
