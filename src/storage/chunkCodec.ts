/**
 * Long-term storage format of one chunk of interaction rows: the rows column by column (values repeat
 * down a column, so it compresses far better than row by row) as canonical JSON, compressed with Brotli.
 * The checksum covers the canonical uncompressed bytes, so a chunk can be verified after it is read
 * back from the database and the same rows re-read from the hot store must produce the same checksum.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants } from 'node:zlib';
import { buildUserFilter } from '../archive/userFilter';

export const CHUNK_CODEC = 'json-columns+br';

/** Columns of the hot tables (`interactions` and each message's own), in the order they are stored; `id` first. */
export const INTERACTION_COLUMNS = [
  'id',
  'event_id',
  'message_kind',
  'message_id',
  'user_id',
  'event_type',
  'variant_id',
  'step_id',
  'variation_id',
  'alias',
  'channel',
  'occurred_at',
] as const;
export type InteractionColumn = (typeof INTERACTION_COLUMNS)[number];
/** The columns as a quoted SQL list, for the restore's INSERT and RETURNING clauses. */
export const INTERACTION_COLUMN_LIST = INTERACTION_COLUMNS.map((c) => `\`${c}\``).join(', ');
/** As mysql2 returns them with dateStrings and bigNumberStrings: every value a string or null. */
export type InteractionRow = Record<InteractionColumn, string | null>;

interface ColumnarChunk {
  v: 1;
  columns: readonly InteractionColumn[];
  data: (string | null)[][];
}

const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);

/** A value as the canonical bytes hold it: a string, or null for SQL NULL. */
export const canonicalValue = (value: string | number | null | undefined): string | null =>
  value === null || value === undefined ? null : String(value);

export function canonicalBytes(rows: readonly InteractionRow[]): Buffer {
  return canonicalBytesOfColumns(INTERACTION_COLUMNS.map((c) => rows.map((r) => canonicalValue(r[c]))));
}

/** One value of a row read with `rowsAsArray`: mysql2 gives strings (dateStrings, bigNumberStrings) or null. */
export type RowArray = readonly (string | null)[];

/**
 * The same canonical bytes from rows read as arrays in INTERACTION_COLUMNS order, without building an
 * object per row: the archive and restore paths handle millions of rows and this is where their CPU goes.
 */
export function canonicalBytesOfRowArrays(rows: readonly RowArray[]): Buffer {
  return canonicalBytesOfColumns(INTERACTION_COLUMNS.map((_, ci) => rows.map((r) => canonicalValue(r[ci]))));
}

function canonicalBytesOfColumns(data: (string | null)[][]): Buffer {
  const chunk: ColumnarChunk = { v: 1, columns: INTERACTION_COLUMNS, data };
  return Buffer.from(JSON.stringify(chunk), 'utf8');
}

/** Values per JSON text appended: texts this short are young garbage, which the collector frees cheaply. */
const CANONICAL_PIECE = 256;

/**
 * canonicalBytesOfRowArrays written piece by piece into one buffer, never as one string: an archive
 * hands every chunk to a codec thread this way, and a megabyte string per chunk lands in the heap's
 * large-object space, where it stays until a full collection while the worker's memory climbs. The
 * bytes are over an ArrayBuffer of their own (never Node's shared pool), so they can be moved to a thread.
 */
export function canonicalBufferOfRowArrays(rows: readonly RowArray[]): Buffer<ArrayBuffer> {
  let buf = Buffer.allocUnsafeSlow(Math.max(1024, rows.length * 320));
  let used = 0;
  const append = (text: string) => {
    const n = Buffer.byteLength(text);
    if (used + n > buf.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(buf.length * 2, used + n));
      buf.copy(bigger, 0, 0, used);
      buf = bigger;
    }
    used += buf.write(text, used);
  };
  append(`{"v":1,"columns":${JSON.stringify(INTERACTION_COLUMNS)},"data":[`);
  for (let ci = 0; ci < INTERACTION_COLUMNS.length; ci++) {
    append(ci > 0 ? ',[' : '[');
    for (let from = 0; from < rows.length; from += CANONICAL_PIECE) {
      const piece = rows.slice(from, from + CANONICAL_PIECE).map((r) => canonicalValue(r[ci]));
      const text = JSON.stringify(piece);
      append(from > 0 ? `,${text.slice(1, -1)}` : text.slice(1, -1));
    }
    append(']');
  }
  append(']}');
  return buf.subarray(0, used);
}

/**
 * A chunk's rows as their canonical bytes, made as soon as they are read: what an archive keeps of a
 * chunk while it is stored (bytes outside the JavaScript heap, not tens of thousands of strings).
 */
export interface CanonicalChunk {
  bytes: Buffer<ArrayBuffer>;
  /** sha256 of `bytes`: the chunk's checksum in either store. */
  checksum: string;
  rowCount: number;
  firstId: string;
  lastId: string;
  /** Which users the chunk may hold (src/archive/userFilter.ts), for its catalog row. */
  userFilter: Buffer;
}

/** Where `user_id` is in a row read as an array, and among a chunk's columns. */
export const USER_ID_INDEX = INTERACTION_COLUMNS.indexOf('user_id');

/** Rows read as arrays (INTERACTION_COLUMNS order, id first, ids ascending) as a CanonicalChunk. */
export function canonicalChunkOfRowArrays(rows: readonly RowArray[]): CanonicalChunk {
  if (rows.length === 0) throw new Error('cannot encode an empty chunk');
  const bytes = canonicalBufferOfRowArrays(rows);
  return {
    bytes,
    checksum: sha256(bytes),
    rowCount: rows.length,
    firstId: String(rows[0][0]),
    lastId: String(rows[rows.length - 1][0]),
    userFilter: buildUserFilter(rows.map((r) => r[USER_ID_INDEX] ?? null)),
  };
}

/**
 * sha256 of canonicalBytesOfRowArrays(rows), hashed column by column: the same digest without building
 * the chunk's whole JSON text at once. Verification runs this for every chunk moved, and megabyte
 * strings per chunk are what made a worker's memory climb during a long move.
 */
export function checksumOfRowArrays(rows: readonly RowArray[]): string {
  return checksumOfColumns(INTERACTION_COLUMNS.map((_, ci) => rows.map((r) => canonicalValue(r[ci]))));
}

/** The same sha256 from the values column by column (INTERACTION_COLUMNS order), as the Parquet chunks hold them. */
export function checksumOfColumns(columns: readonly (readonly (string | null)[])[]): string {
  const hash = createHash('sha256');
  // JSON.stringify({ v, columns, data }) writes exactly these pieces, in this order.
  hash.update(`{"v":1,"columns":${JSON.stringify(INTERACTION_COLUMNS)},"data":[`);
  for (let ci = 0; ci < INTERACTION_COLUMNS.length; ci++) {
    if (ci > 0) hash.update(',');
    hash.update(JSON.stringify(columns[ci]));
  }
  hash.update(']}');
  return hash.digest('hex');
}

/** Ids are BIGINT strings: shorter is smaller, equal lengths compare as text. */
export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface EncodedChunk {
  payload: Buffer;
  checksum: string;
  rowCount: number;
  firstId: string;
  lastId: string;
}

export async function encodeChunk(rows: readonly InteractionRow[]): Promise<EncodedChunk> {
  if (rows.length === 0) throw new Error('cannot encode an empty chunk');
  return encodeCanonical(canonicalBytes(rows), rows.length, String(rows[0].id), String(rows[rows.length - 1].id));
}

/** encodeChunk for rows read as arrays (INTERACTION_COLUMNS order, id first). */
export async function encodeRowArrays(rows: readonly RowArray[]): Promise<EncodedChunk> {
  if (rows.length === 0) throw new Error('cannot encode an empty chunk');
  return encodeCanonical(canonicalBytesOfRowArrays(rows), rows.length, String(rows[0][0]), String(rows[rows.length - 1][0]));
}

/**
 * Brotli quality 3: on interaction rows (random event and user ids dominate the entropy) qualities 3
 * to 9 all compress to about the same size, while 5, the previous setting, took several times as
 * long as 3 and was most of the archive's CPU time. The decoder reads every quality alike, so chunks
 * written at 5 restore unchanged.
 */
const BROTLI_QUALITY = 3;

/** encodeChunk for rows already made canonical. */
export async function encodeCanonicalChunk(chunk: CanonicalChunk): Promise<EncodedChunk> {
  return encodeCanonical(chunk.bytes, chunk.rowCount, chunk.firstId, chunk.lastId);
}

async function encodeCanonical(bytes: Buffer, rowCount: number, firstId: string, lastId: string): Promise<EncodedChunk> {
  const payload = await compress(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });
  return { payload, checksum: sha256(bytes), rowCount, firstId, lastId };
}

export class ChunkIntegrityError extends Error {
  override name = 'ChunkIntegrityError';
}

/**
 * Decompresses a stored chunk and checks its bytes against the checksum: proof that the stored copy
 * holds exactly the canonical bytes of the rows it was made from, without decoding them into rows.
 */
export async function verifyPayload(payload: Buffer, checksum: string): Promise<Buffer> {
  const bytes = await decompress(payload);
  const actual = sha256(bytes);
  if (actual !== checksum) {
    throw new ChunkIntegrityError(`chunk checksum mismatch: stored ${checksum}, computed ${actual}`);
  }
  return bytes;
}

/** Columns of a verified chunk, each an array of values in row order. */
export interface DecodedColumns {
  columns: readonly InteractionColumn[];
  data: (string | null)[][];
  rowCount: number;
}

/**
 * The columns of canonical chunk bytes (canonicalBytesOfRowArrays), in INTERACTION_COLUMNS order: how
 * an archive hands a chunk's rows to a codec thread, as one buffer moved rather than every value copied.
 */
export function columnsOfCanonicalBytes(bytes: Uint8Array): (string | null)[][] {
  const chunk = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as ColumnarChunk;
  if (chunk.v !== 1 || chunk.columns.join() !== INTERACTION_COLUMNS.join()) throw new Error('not canonical chunk bytes');
  return chunk.data;
}

/** Decompresses and checks a stored chunk, returning its columns as stored (no object per row). */
export async function decodeChunkColumns(payload: Buffer, expected: { checksum: string; rowCount: number }): Promise<DecodedColumns> {
  const bytes = await verifyPayload(payload, expected.checksum);
  const chunk = JSON.parse(bytes.toString('utf8')) as ColumnarChunk;
  if (chunk.v !== 1) throw new ChunkIntegrityError(`unknown chunk version ${String(chunk.v)}`);
  const ids = chunk.data[chunk.columns.indexOf('id')];
  if (!ids || ids.length !== expected.rowCount) {
    throw new ChunkIntegrityError(`chunk row count mismatch: stored ${expected.rowCount}, decoded ${ids?.length ?? 0}`);
  }
  if (chunk.data.some((col) => col.length !== ids.length)) throw new ChunkIntegrityError('chunk columns differ in length');
  return { columns: chunk.columns, data: chunk.data, rowCount: ids.length };
}

/** Decompresses and checks a stored chunk; throws rather than return rows that do not match. */
export async function decodeChunk(payload: Buffer, expected: { checksum: string; rowCount: number }): Promise<InteractionRow[]> {
  const chunk = await decodeChunkColumns(payload, expected);
  const rows: InteractionRow[] = [];
  for (let i = 0; i < chunk.rowCount; i++) {
    const row = {} as InteractionRow;
    chunk.columns.forEach((c, ci) => {
      row[c] = chunk.data[ci][i];
    });
    rows.push(row);
  }
  return rows;
}

/** sha256 over the chunk checksums in sequence order: one value that pins the whole archive. */
export function manifestChecksum(chunkChecksums: readonly string[]): string {
  return sha256(chunkChecksums.join('\n'));
}
