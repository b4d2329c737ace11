import {randomBytes} from 'node:crypto'

import {META_DB} from './meta.js'
import type {ClusterStore} from './store.js'

/** An intent not refreshed for this long belongs to a dead client. */
export const INTENT_TTL_MS = 10 * 60 * 1000
export const GC_FLAG = 'gc:running'

export interface IntentRecord {
  refreshed: number
  pieces: string[]
  manifest?: string
}

/**
 * An upload in progress announces every piece it will reference, before it
 * relies on that piece, under `u:<id>`. gc keeps whatever a live intent
 * names, so it never deletes a piece an upload is about to link.
 */
export class UploadIntent {
  readonly key = `u:${randomBytes(12).toString('hex')}`
  private readonly record: IntentRecord = {refreshed: Date.now(), pieces: []}
  /** The write in flight, and the one queued behind it that will carry everything added meanwhile. */
  private writing: Promise<void> | null = null
  private queued: Promise<void> | null = null

  constructor(private readonly store: ClusterStore) {}

  /**
   * Records more pieces (or the manifest) and resolves once a write that
   * includes them is stored. Adds made while a write is in flight share the
   * next one, so the cost is one write per round trip, not per piece.
   */
  add(pieces: string[], manifest?: string): Promise<void> {
    this.record.pieces.push(...pieces)
    if (manifest) this.record.manifest = manifest
    if (!this.writing) return this.startWrite()
    this.queued ??= this.writing.catch(() => {}).then(() => {
      this.queued = null
      return this.startWrite()
    })
    return this.queued
  }

  private startWrite(): Promise<void> {
    this.record.refreshed = Date.now()
    const write = this.store.set(META_DB, this.key, Buffer.from(JSON.stringify(this.record))).finally(() => {
      if (this.writing === write) this.writing = null
    })
    this.writing = write
    return write
  }

  async finish(): Promise<void> {
    await Promise.allSettled([this.writing, this.queued])
    await this.store.del(META_DB, [this.key])
  }
}

/** Whether a gc is running now (uploads then store every piece instead of relying on existing ones). */
export async function gcRunning(store: ClusterStore): Promise<boolean> {
  const flag = await store.get(META_DB, GC_FLAG)
  return flag !== null && Number(flag.toString()) > Date.now()
}
