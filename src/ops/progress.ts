import type cliProgress from 'cli-progress'
import {createRequire} from 'node:module'

// cli-progress (16 modules) loads only when a bar is drawn, not on every run.
const require = createRequire(import.meta.url)

/** What transfers report as they go. */
export interface Progress {
  /** More bytes to move (a file was found). */
  addTotal(bytes: number): void
  /** Bytes moved (may be negative when a retry starts a file over). */
  advance(bytes: number): void
  stop(): void
}

export const silentProgress: Progress = {addTotal() {}, advance() {}, stop() {}}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }

  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`
}

function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--'
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const pad = (n: number) => String(n).padStart(2, '0')
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`
}

/** A progress bar on stderr showing bytes, rate and ETA. */
export class BarProgress implements Progress {
  private readonly bar: cliProgress.SingleBar
  private total = 0
  private value = 0
  private readonly started = Date.now()

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    const {Presets, SingleBar} = require('cli-progress') as typeof cliProgress
    this.bar = new SingleBar(
      {
        stream,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
        format: (options, params) => {
          const width = options.barsize ?? 30
          // Before the first file is sized the total is 0: show an empty bar, not a full one.
          const filled = params.total > 0 ? Math.round(Math.min(1, params.value / params.total) * width) : 0
          const elapsed = (Date.now() - this.started) / 1000
          const rate = elapsed > 0 ? params.value / elapsed : 0
          const eta = rate > 0 ? (params.total - params.value) / rate : Number.NaN
          return `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${formatBytes(params.value)} / ${formatBytes(params.total)} | ${formatBytes(rate)}/s | ETA ${formatEta(eta)}`
        },
      },
      Presets.shades_classic,
    )
    this.bar.start(0, 0)
  }

  addTotal(bytes: number): void {
    this.total += bytes
    this.bar.setTotal(this.total)
  }

  advance(bytes: number): void {
    this.value += bytes
    this.bar.update(this.value)
  }

  stop(): void {
    this.bar.stop()
  }
}

/** A bar when stderr is a terminal and output is not quiet or JSON; otherwise nothing. */
export function createProgress(options: {quiet: boolean; json: boolean}): Progress {
  if (options.quiet || options.json || !process.stderr.isTTY) return silentProgress
  return new BarProgress()
}
