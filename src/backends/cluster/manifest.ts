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
}

/** The database that holds pieces, apart from the metadata. */
export const PIECE_DB = 2

/**
 * 1 MiB pieces, the common BitTorrent size: large enough that per-piece
 * costs (a round trip, a blob file on each server, 64 hex digits in the
 * manifest) stay small beside the data; small enough that the window of
 * pieces in flight keeps memory low (8 MiB each way) and that a retry
 * repeats little. Measured: 1 MiB values moved faster through the router
 * than 4 MiB ones (bench/files.bench.ts), when every piece went through it.
 * Large files use LARGE_PIECE_SIZE. See docs/cluster-files.md.
 */
export const PIECE_SIZE = 1024 * 1024

/** Files of this size and above are cut into LARGE_PIECE_SIZE pieces. */
export const LARGE_FILE_BYTES = 64 * 1024 * 1024

/**
 * 4 MiB pieces for large files, as BitTorrent picks its piece size by the
 * file's: a quarter of the per-piece costs (a blob file, a LevelDB entry, a
 * dedup check and a round trip per replica, 64 hex digits in the manifest).
 * The manifest records each file's piece size, so readers need no rule.
 */
export const LARGE_PIECE_SIZE = 4 * 1024 * 1024

/** The piece size for a new file of `size` bytes (unknown: the default). */
export function pieceSizeFor(size: number | undefined): number {
  return size !== undefined && size >= LARGE_FILE_BYTES ? LARGE_PIECE_SIZE : PIECE_SIZE
}

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
