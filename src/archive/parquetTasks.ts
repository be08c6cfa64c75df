/**
 * The Parquet work of the S3 store as tasks a worker thread runs (src/archive/parquetCodec.ts): encoding
 * a chunk, and decoding one to check it against its rows' checksum. They are most of an archive's CPU,
 * and the worker's main thread has the database reads, the catalog and the HTTP to do meanwhile.
 *
 * An integrity failure comes back as a value, not a throw: an error crossing threads loses its class,
 * and ChunkIntegrityError is what tells the actor that a retry cannot help.
 */
import { ChunkIntegrityError, columnsOfCanonicalBytes } from '../storage/chunkCodec';
import { decodeParquetChunk, encodeParquetColumns, parquetUserRows, type ChunkIdentity, type ParquetChunk } from './parquetChunk';

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

/** A task's answer: its value, or why the chunk failed its check (ChunkIntegrityError's message). */
export type Checked<T> = ({ ok: true } & T) | { ok: false; integrity: string };

export type DecodeResult = Checked<{ columns: (string | null)[][] | null }>;

/** A chunk of which only one user's rows are wanted back (parquetUserRows: its pages holding them decoded). */
export interface UserRowsTask extends Omit<DecodeTask, 'checkOnly'> {
  userId: string;
}

export type UserRowsResult = Checked<{ rows: (string | null)[][] }>;

export function encode(task: EncodeTask): ParquetChunk {
  return encodeParquetColumns(columnsOfCanonicalBytes(task.canonical), task.checksum, task.identity);
}

/** Runs a check, turning ChunkIntegrityError into a value that crosses threads with its meaning. */
async function checked<T extends object>(work: () => Promise<T>): Promise<Checked<T>> {
  try {
    return { ok: true, ...(await work()) };
  } catch (err) {
    if (err instanceof ChunkIntegrityError) return { ok: false, integrity: err.message };
    throw err;
  }
}

export function decode(task: DecodeTask): Promise<DecodeResult> {
  return checked(async () => {
    const decoded = await decodeParquetChunk(task.body, task);
    return { columns: task.checkOnly ? null : decoded.columns };
  });
}

export function userRows(task: UserRowsTask): Promise<UserRowsResult> {
  return checked(async () => {
    return { rows: (await parquetUserRows(task.body, task, task.userId)) as (string | null)[][] };
  });
}
