/**
 * The Parquet work of the S3 store as tasks a worker thread runs (src/archive/parquetCodec.ts): encoding
 * a chunk, and decoding one to check it against its rows' checksum. They are most of an archive's CPU,
 * and the worker's main thread has the database reads, the catalog and the HTTP to do meanwhile.
 *
 * An integrity failure comes back as a value, not a throw: an error crossing threads loses its class,
 * and ChunkIntegrityError is what tells the actor that a retry cannot help.
 */
import { ChunkIntegrityError, columnsOfCanonicalBytes } from '../storage/chunkCodec';
import { rowsOfUser } from './store';
import { decodeParquetChunk, encodeParquetColumns, type ChunkIdentity, type ParquetChunk } from './parquetChunk';

export interface EncodeTask {
  /** The chunk's canonical bytes (chunkCodec's CanonicalChunk), moved to the thread, and their sha256. */
  canonical: Uint8Array;
  checksum: string;
  identity: ChunkIdentity;
}

export interface DecodeTask {
  body: Uint8Array;
  checksum: string;
  rowCount: number;
  identity?: ChunkIdentity;
  /** Only check: the columns are not sent back. */
  checkOnly: boolean;
}

export type DecodeResult = { ok: true; columns: (string | null)[][] | null } | { ok: false; integrity: string };

/** A chunk checked whole, of which only one user's rows are wanted back. */
export interface UserRowsTask extends Omit<DecodeTask, 'checkOnly'> {
  userId: string;
}

export type UserRowsResult = { ok: true; rows: (string | null)[][] } | { ok: false; integrity: string };

export function encode(task: EncodeTask): ParquetChunk {
  return encodeParquetColumns(columnsOfCanonicalBytes(task.canonical), task.checksum, task.identity);
}

export async function decode(task: DecodeTask): Promise<DecodeResult> {
  try {
    const decoded = await decodeParquetChunk(task.body, task);
    return { ok: true, columns: task.checkOnly ? null : decoded.columns };
  } catch (err) {
    if (err instanceof ChunkIntegrityError) return { ok: false, integrity: err.message };
    throw err;
  }
}

export async function userRows(task: UserRowsTask): Promise<UserRowsResult> {
  try {
    const decoded = await decodeParquetChunk(task.body, task);
    return { ok: true, rows: rowsOfUser(decoded.columns, task.userId) as (string | null)[][] };
  } catch (err) {
    if (err instanceof ChunkIntegrityError) return { ok: false, integrity: err.message };
    throw err;
  }
}
