import {setTimeout as sleep} from 'node:timers/promises'

import {GC_FLAG, type IntentRecord, INTENT_TTL_MS} from './intents.js'
import {type Manifest, manifestKey, PIECE_DB} from './manifest.js'
import {META_DB, type MetaTree} from './meta.js'
import type {ClusterStore} from './store.js'

export interface GcOptions {
  /**
   * How long to wait after raising the gc flag, so that every upload has
   * seen it (uploads re-read it at least once a second).
   */
  settleMs?: number
  /** Only report what would be freed. */
  dryRun?: boolean
  /** An upload intent not refreshed for this long belongs to a dead client (default INTENT_TTL_MS). */
  staleAfterMs?: number
  log?: (message: string) => void
}

export interface GcReport {
  piecesFreed: number
  bytesFreed: number
  manifestsFreed: number
  staleIntents: number
  piecesKept: number
}

interface Candidate {
  db: number
  key: string
  version: string
  size: number
}

/**
 * Reclaims pieces and manifests that nothing references, without ever
 * taking one an upload in progress is about to link:
 * 1. raise the gc flag, so uploads stop relying on pieces that already
 *    exist, and wait until every upload has seen it;
 * 2. list the candidates, each with its version;
 * 3. only then mark what live upload intents and the tree reference (an
 *    upload names a piece or manifest in its intent before relying on it,
 *    so whatever was listed in 2 and relied on is marked here);
 * 4. delete each unmarked candidate by compare-and-set at the version of 2,
 *    so a piece an upload stored again meanwhile survives.
 */
export async function collectGarbage(store: ClusterStore, tree: MetaTree, options: GcOptions = {}): Promise<GcReport> {
  const log = options.log ?? (() => {})
  const report: GcReport = {piecesFreed: 0, bytesFreed: 0, manifestsFreed: 0, staleIntents: 0, piecesKept: 0}
  await store.set(META_DB, GC_FLAG, Buffer.from(String(Date.now() + 10 * 60 * 1000)))
  try {
    await sleep(options.settleMs ?? 2500)
    const candidates: Candidate[] = []
    for (const [db, pattern] of [
      [PIECE_DB, 'p:*'],
      [META_DB, 'm:*'],
    ] as const) {
      for (const key of await store.keys(db, pattern)) {
        const found = await store.versionOf(db, key)
        if (found) candidates.push({db, key, ...found})
      }
    }

    const {pieces, manifests} = await markInUse(store, tree, report, options)
    log(`${candidates.length} candidates; ${pieces.size} pieces and ${manifests.size} manifests in use`)
    for (const candidate of candidates) {
      const isPiece = candidate.db === PIECE_DB
      if ((isPiece ? pieces : manifests).has(candidate.key.slice(2))) {
        if (isPiece) report.piecesKept++
        continue
      }

      if (!options.dryRun && !(await store.compareAndSet(candidate.db, candidate.key, candidate.version, null))) continue
      if (isPiece) {
        report.piecesFreed++
        report.bytesFreed += candidate.size
      } else {
        report.manifestsFreed++
      }
    }
  } finally {
    await store.del(META_DB, [GC_FLAG])
  }

  return report
}

/** Pieces and manifests named by live upload intents, then by every file in the tree. Stale intents are dropped. */
async function markInUse(
  store: ClusterStore,
  tree: MetaTree,
  report: GcReport,
  options: GcOptions,
): Promise<{pieces: Set<string>; manifests: Set<string>}> {
  const pieces = new Set<string>()
  const manifests = new Set<string>()
  for (const key of await store.keys(META_DB, 'u:*')) {
    const bytes = await store.get(META_DB, key)
    if (!bytes) continue
    const intent = JSON.parse(bytes.toString('utf8')) as IntentRecord
    if (Date.now() - intent.refreshed >= (options.staleAfterMs ?? INTENT_TTL_MS)) {
      report.staleIntents++
      if (!options.dryRun) await store.del(META_DB, [key])
      continue
    }

    for (const hash of intent.pieces) pieces.add(hash)
    if (intent.manifest) manifests.add(intent.manifest)
  }

  for await (const {record} of tree.files()) manifests.add(record.manifest)
  for (const id of manifests) {
    const bytes = await store.get(META_DB, manifestKey(id))
    if (bytes) for (const hash of (JSON.parse(bytes.toString('utf8')) as Manifest).pieces) pieces.add(hash)
  }

  return {pieces, manifests}
}
