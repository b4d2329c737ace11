/** The view: who is master and who is backup, under a number that grows by one per change. `""` means none. */
export interface View {
  number: number
  master: string
  backup: string
}

export const NO_VIEW: Readonly<View> = Object.freeze({number: 0, master: '', backup: ''})

export interface ViewServiceOptions {
  /** A server that has not pinged for this many ticks is dead; default 5. */
  deadPings?: number
}

/**
 * The classic view service as a pure state machine: no sockets, no clocks.
 * Time is the number of `tick()` calls. The coordinator wraps it in XML-RPC.
 *
 * Rules (DESIGN.md §6):
 * - the first ping makes view 1 with the pinger as master;
 * - a server that misses `deadPings` ticks is dead; a master that pings 0, or a
 *   backup that pings 0 once the master acked the view naming it, has restarted
 *   and lost its data, so it counts as failed too;
 * - nothing changes until the master has acknowledged the current view by
 *   pinging its number (so a dead master that never acked freezes the view);
 * - a failed master is replaced by the backup only, never by an idle server;
 * - a missing or failed backup is replaced by a live idle server;
 * - each change adds exactly 1, and at most one change happens at a time.
 */
export class ViewService {
  private current: View = {...NO_VIEW}
  private acked = false
  private now = 0
  private readonly deadPings: number
  /** Tick of each server's last ping, in first-ping order. */
  private readonly lastPing = new Map<string, number>()
  /** Members of the current view that pinged 0 since it began: restarted, data lost. */
  private readonly restarted = new Set<string>()

  constructor(options: ViewServiceOptions = {}) {
    this.deadPings = options.deadPings ?? 5
  }

  view(): View {
    return {...this.current}
  }

  master(): string {
    return this.current.master
  }

  /** True once the master has pinged the current view's number. */
  isAcked(): boolean {
    return this.acked
  }

  /** Server `name` reports that it is at view `viewnum` (0 right after it starts). */
  ping(viewnum: number, name: string): View {
    this.lastPing.set(name, this.now)
    const view = this.current
    if (view.number === 0) {
      this.change({number: 1, master: name, backup: ''})
      return this.view()
    }
    if (name === view.master) {
      // A master of view 1 that never acked re-pinging 0 lost nothing: there was no data yet.
      if (viewnum === 0 && !(view.number === 1 && !this.acked)) this.restarted.add(name)
      else if (viewnum === view.number && !this.restarted.has(name)) this.acked = true
    } else if (name === view.backup && viewnum === 0 && this.acked) {
      // Before the master acked this view, a newly named backup pinging 0 has
      // only not heard of the view yet; after it, the backup lost its copy.
      this.restarted.add(name)
    }
    this.reconfigure()
    return this.view()
  }

  /** Advances time by one tick and applies any change that is due. */
  tick(): View {
    this.now += 1
    this.reconfigure()
    return this.view()
  }

  private alive(name: string): boolean {
    const last = this.lastPing.get(name)
    return last !== undefined && this.now - last < this.deadPings
  }

  private failed(name: string): boolean {
    return !this.alive(name) || this.restarted.has(name)
  }

  /** A live server in no role, in the order servers first pinged. */
  private idle(...exclude: string[]): string {
    for (const name of this.lastPing.keys()) {
      if (!exclude.includes(name) && name !== this.current.master && name !== this.current.backup && this.alive(name)) return name
    }
    // A restarted member is alive and idle now: it may come back as backup, with a fresh copy.
    for (const name of this.restarted) if (!exclude.includes(name) && this.alive(name)) return name
    return ''
  }

  private reconfigure(): void {
    const {number, master, backup} = this.current
    if (number === 0 || !this.acked) return
    if (this.failed(master)) {
      if (backup === '' || this.failed(backup)) return
      this.change({number: number + 1, master: backup, backup: this.idle(backup)})
    } else if (backup !== '' && this.failed(backup)) {
      this.change({number: number + 1, master, backup: this.idle(master)})
    } else if (backup === '') {
      const candidate = this.idle(master)
      if (candidate) this.change({number: number + 1, master, backup: candidate})
    }
  }

  private change(next: View): void {
    this.current = next
    this.acked = false
    this.restarted.clear()
  }
}

/** Reads a view struct received over XML-RPC; throws on anything else. */
export function parseView(value: unknown): View {
  const struct = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
  const number = Object.hasOwn(struct, 'number') ? struct.number : undefined
  const master = Object.hasOwn(struct, 'master') ? struct.master : undefined
  const backup = Object.hasOwn(struct, 'backup') ? struct.backup : undefined
  if (!Number.isSafeInteger(number) || typeof master !== 'string' || typeof backup !== 'string') {
    throw new Error(`not a view: ${JSON.stringify(value)}`)
  }
  return {number: number as number, master, backup}
}
