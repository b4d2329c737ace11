import {createHash} from 'node:crypto'

/**
 * A file's manifest: our "torrent file". Stored once under the SHA-256 of
 * its JSON (`m:<hash>`), so identical files share it and `cp` is a pointer copy.
 */
export interface Manifest {
  size: number
  pieceSize: number
  /** SHA-256 of each piece, in order; piece i is stored under `p:<pieces[i]>`. */
  pieces: string[]
  sha256: string
  md5: string
}

/** The database that holds pieces, apart from the metadata. */
export const PIECE_DB = 2

/**
 * 4 MiB pieces: large enough that per-piece costs (a round trip, a LevelDB
 * write, a manifest line) stay small beside the data, small enough that a
 * window of pieces in flight keeps memory bounded (8 × 4 MiB each way) and
 * far from the 64 MiB value limit, and a lost transfer repeats little.
 */
export const PIECE_SIZE = 4 * 1024 * 1024

export const pieceKey = (hash: string) => `p:${hash}`
export const manifestKey = (id: string) => `m:${id}`

export function encodeManifest(manifest: Manifest): {id: string; bytes: Buffer} {
  const bytes = Buffer.from(JSON.stringify(manifest))
  return {id: createHash('sha256').update(bytes).digest('hex'), bytes}
}

/** The byte length of piece `index`. */
export function pieceLength(manifest: Manifest, index: number): number {
  return index < manifest.pieces.length - 1 ? manifest.pieceSize : manifest.size - manifest.pieceSize * index
}
