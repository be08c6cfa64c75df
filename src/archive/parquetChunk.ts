/**
 * The object store's chunk format: one Parquet file per chunk, typed columns (the row id as an
 * unsigned 64-bit integer, `occurred_at` as a millisecond timestamp in UTC, every other column a UTF-8
 * string), GZIP-compressed by Node's own zlib, in one row group. Any Parquet reader (DuckDB, Spark,
 * pandas, Athena) reads it without this service.
 *
 * The file's key-value metadata carries what the bucket needs to describe itself without the
 * service's database: the message, generation and sequence, the row count, the id range and the
 * sha256 of the chunk's canonical rows (src/storage/chunkCodec.ts), the same checksum the MySQL store
 * keeps, so a chunk's rows verify alike whichever store holds them.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { parquetMetadata, parquetRead, type Compressors as ReadCompressors } from 'hyparquet';
import { parquetWriteBuffer, type ColumnSource } from 'hyparquet-writer';
import { ChunkIntegrityError, checksumOfColumns, INTERACTION_COLUMNS, type InteractionColumn, type RowArray } from '../storage/chunkCodec';

/** What `format` in a chunk's metadata says: the columns and their meaning as this module writes them. */
export const PARQUET_CHUNK_FORMAT = 'interaction-data/v1';
export const PARQUET_CODEC = 'parquet';

const META_PREFIX = 'interaction-data.';

export interface ChunkIdentity {
  kind: string;
  id: string;
  generation: number;
  seq: number;
}

/** A chunk encoded as a Parquet file, with what its catalog row records. */
export interface ParquetChunk {
  body: Buffer;
  /** sha256 of the chunk's canonical rows (chunkCodec's checksum): the same rows give the same value in either store. */
  checksum: string;
  rowCount: number;
  firstId: string;
  lastId: string;
}

/** A chunk read back: its columns in INTERACTION_COLUMNS order, each a value per row, as mysql2 gives them (strings or null). */
export interface ParquetColumns {
  columns: (string | null)[][];
  rowCount: number;
  metadata: Record<string, string>;
}

// Level 1: on these rows (random event and user ids carry most of the bytes) higher levels shrink a
// chunk by a few per cent for several times the CPU, and the archive's bound is this process's CPU.
const compressors = { GZIP: (input: Uint8Array) => gzipSync(input, { level: 1 }) };
const decompressors: ReadCompressors = { GZIP: (input: Uint8Array) => gunzipSync(input) };

const TIMESTAMP_COLUMN: InteractionColumn = 'occurred_at';
const ID_INDEX = INTERACTION_COLUMNS.indexOf('id');
const TIMESTAMP_INDEX = INTERACTION_COLUMNS.indexOf(TIMESTAMP_COLUMN);

const DAY_MS = 86_400_000;
const ZERO = 48;

/** The number written by `count` decimal digits of `text` from `at`, or -1 if any of them is not a digit. */
function digitsAt(text: string, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const d = text.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

const notDatetime = (text: string) => new ChunkIntegrityError(`not a DATETIME(3) value: ${JSON.stringify(text)}`);

/**
 * `YYYY-MM-DD HH:MM:SS.mmm` (DATETIME(3) as mysql2 gives it with dateStrings) as milliseconds since the
 * epoch, UTC. Read digit by digit: it runs once per archived row, and a regular expression was a
 * twentieth of a chunk's encoding.
 */
export function millisOfDatetime(text: string): number {
  if (
    text.length !== 23 ||
    text[4] !== '-' ||
    text[7] !== '-' ||
    text[10] !== ' ' ||
    text[13] !== ':' ||
    text[16] !== ':' ||
    text[19] !== '.'
  ) {
    throw notDatetime(text);
  }
  const parts = [
    digitsAt(text, 0, 4),
    digitsAt(text, 5, 2),
    digitsAt(text, 8, 2),
    digitsAt(text, 11, 2),
    digitsAt(text, 14, 2),
    digitsAt(text, 17, 2),
    digitsAt(text, 20, 3),
  ];
  if (parts.some((p) => p < 0)) throw notDatetime(text);
  const [year, month, day, hours, minutes, seconds, ms] = parts;
  const millis = Date.UTC(year, month - 1, day, hours, minutes, seconds, ms);
  // Date.UTC maps years 0-99 to 1900-1999; DATETIME's range starts at 1000, so only a malformed value lands there.
  if (Number.isNaN(millis) || year < 1000) throw notDatetime(text);
  return millis;
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));

// The date part of the last value written: a chunk's rows are mostly of few days.
let lastDay = NaN;
let lastDayText = '';

/** The inverse of millisOfDatetime: the text the database gives for the same instant. */
export function datetimeOfMillis(millis: number): string {
  const day = Math.floor(millis / DAY_MS);
  if (day !== lastDay) {
    const d = new Date(day * DAY_MS);
    lastDayText = `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
    lastDay = day;
  }
  const ofDay = millis - day * DAY_MS;
  const s = Math.floor(ofDay / 1000);
  return `${lastDayText} ${pad2(Math.floor(s / 3600))}:${pad2(Math.floor(s / 60) % 60)}:${pad2(s % 60)}.${pad3(ofDay % 1000)}`;
}

function schemaFor(): NonNullable<Parameters<typeof parquetWriteBuffer>[0]['schema']> {
  return [
    { name: 'interactions', num_children: INTERACTION_COLUMNS.length },
    ...INTERACTION_COLUMNS.map((name) => {
      if (name === 'id') return { name, type: 'INT64' as const, repetition_type: 'REQUIRED' as const, converted_type: 'UINT_64' as const };
      if (name === TIMESTAMP_COLUMN)
        return { name, type: 'INT64' as const, repetition_type: 'OPTIONAL' as const, converted_type: 'TIMESTAMP_MILLIS' as const };
      return { name, type: 'BYTE_ARRAY' as const, repetition_type: 'OPTIONAL' as const, converted_type: 'UTF8' as const };
    }),
  ];
}
const SCHEMA = schemaFor();

/** Uncompressed bytes per data page; the file is no larger than with one page per column (GZIP per page). */
const PAGE_BYTES = 16 * 1024;

/**
 * Encodes rows read as arrays (INTERACTION_COLUMNS order, id first, ids ascending) into one Parquet
 * file. The checksum is of the rows as given; decodeParquetChunk recomputes it from the file.
 */
export function encodeParquetChunk(rows: readonly RowArray[], identity: ChunkIdentity): ParquetChunk {
  const columns: (string | null)[][] = INTERACTION_COLUMNS.map((_, ci) => rows.map((r) => r[ci] ?? null));
  return encodeParquetColumns(columns, checksumOfColumns(columns), identity);
}

/**
 * encodeParquetChunk for rows already column by column (as the canonical chunk text holds them), with
 * their checksum computed by the caller. Nothing trusts that checksum unchecked: a chunk's file is
 * decoded and its rows hashed again before its catalog row is written.
 */
export function encodeParquetColumns(
  columns: readonly (readonly (string | null)[])[],
  checksum: string,
  identity: ChunkIdentity,
): ParquetChunk {
  const rowCount = columns[ID_INDEX]?.length ?? 0;
  if (rowCount === 0) throw new Error('cannot encode an empty chunk');
  if (columns.length !== INTERACTION_COLUMNS.length || columns.some((c) => c.length !== rowCount)) {
    throw new Error(`a chunk needs ${INTERACTION_COLUMNS.length} columns of ${rowCount} values`);
  }
  const firstId = String(columns[ID_INDEX][0]);
  const lastId = String(columns[ID_INDEX][rowCount - 1]);
  const columnData: ColumnSource[] = INTERACTION_COLUMNS.map((name, ci) => {
    if (ci === ID_INDEX) return { name, data: columns[ci].map((v) => BigInt(v as string)), encoding: 'DELTA_BINARY_PACKED' };
    if (ci === TIMESTAMP_INDEX)
      return { name, data: columns[ci].map((v) => (v === null ? null : BigInt(millisOfDatetime(v)))), encoding: 'DELTA_BINARY_PACKED' };
    // Event ids are unique per row and user ids nearly so within a chunk: a dictionary of them is as long
    // as the column and costs a pass to find out; GZIP finds what repeats anyway.
    if (name === 'event_id' || name === 'user_id') return { name, data: columns[ci] as (string | null)[], encoding: 'PLAIN' };
    return { name, data: columns[ci] as (string | null)[] };
  });
  const metadata: Record<string, string> = {
    format: PARQUET_CHUNK_FORMAT,
    message_kind: identity.kind,
    message_id: identity.id,
    generation: String(identity.generation),
    seq: String(identity.seq),
    row_count: String(rowCount),
    first_id: firstId,
    last_id: lastId,
    rows_sha256: checksum,
  };
  const buffer = parquetWriteBuffer({
    columnData,
    schema: SCHEMA,
    codec: 'GZIP',
    compressors,
    // Statistics cost as much CPU as the rest of the encoding; the catalog and the metadata above carry the id range.
    statistics: false,
    rowGroupSize: rowCount,
    // Pages of a few thousand values at most, located by the offset index written with them: a user's
    // access request decodes the pages holding the user's rows, not whole columns (parquetUserRows).
    pageSize: PAGE_BYTES,
    kvMetadata: Object.entries(metadata).map(([key, value]) => ({ key: META_PREFIX + key, value })),
    createdBy: 'interaction-data',
  });
  return { body: Buffer.from(buffer), checksum, rowCount, firstId, lastId };
}

/** The file's `interaction-data.*` key-value metadata, without the prefix. */
export function parquetChunkMetadata(body: Uint8Array): Record<string, string> {
  const meta = parquetMetadata(toArrayBuffer(body));
  const out: Record<string, string> = {};
  for (const kv of meta.key_value_metadata ?? []) {
    if (kv.key.startsWith(META_PREFIX) && kv.value !== undefined) out[kv.key.slice(META_PREFIX.length)] = kv.value;
  }
  return out;
}

function toArrayBuffer(body: Uint8Array): ArrayBuffer {
  return body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer
    ? body.buffer
    : (body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer);
}

/** The file's metadata, checked against what the caller expects (the catalog's); ChunkIntegrityError otherwise. */
function checkedMetadata(
  body: Uint8Array,
  expected: { checksum: string; rowCount: number; identity?: ChunkIdentity },
): Record<string, string> {
  let metadata: Record<string, string>;
  try {
    metadata = parquetChunkMetadata(body);
  } catch (err) {
    throw new ChunkIntegrityError(`not a readable Parquet chunk: ${(err as Error).message}`);
  }
  if (metadata.format !== PARQUET_CHUNK_FORMAT) throw new ChunkIntegrityError(`unknown chunk format ${JSON.stringify(metadata.format)}`);
  if (metadata.rows_sha256 !== expected.checksum || Number(metadata.row_count) !== expected.rowCount) {
    throw new ChunkIntegrityError(
      `chunk metadata says ${metadata.row_count} rows with sha256 ${metadata.rows_sha256}, the catalog ${expected.rowCount} rows with ${expected.checksum}`,
    );
  }
  const id = expected.identity;
  if (
    id &&
    (metadata.message_kind !== id.kind ||
      metadata.message_id !== id.id ||
      Number(metadata.generation) !== id.generation ||
      Number(metadata.seq) !== id.seq)
  ) {
    throw new ChunkIntegrityError(
      `chunk metadata names ${metadata.message_kind}:${metadata.message_id} generation ${metadata.generation} seq ${metadata.seq}, ` +
        `not ${id.kind}:${id.id} generation ${id.generation} seq ${id.seq}`,
    );
  }
  return metadata;
}

/** A value of a column as the rows hold it: strings and the timestamps' text as they come, the id's bigint as text. */
const textOf = (v: unknown): string | null => (v === null || v === undefined ? null : typeof v === 'bigint' ? v.toString() : (v as string));

/**
 * The rows of one user in a chunk file, decoding the user_id column and then only the pages holding
 * the user's rows. Checked: the file's metadata against the catalog (rows, rows' sha256, identity) and
 * the user_id column's length; the bytes themselves are checked by whoever fetched them (the S3 store
 * against the SHA-256 the server keeps, GZIP's CRC per page). The rows' checksum is not recomputed
 * here, as it would need every value: a restore, an erasure's rewrite and a migration recompute it.
 */
export async function parquetUserRows(
  body: Uint8Array,
  expected: { checksum: string; rowCount: number; identity?: ChunkIdentity },
  userId: string,
): Promise<RowArray[]> {
  checkedMetadata(body, expected);
  const file = toArrayBuffer(body);
  const metadata = parquetMetadata(file);
  const parsers = { timestampFromMilliseconds: (millis: bigint) => datetimeOfMillis(Number(millis)) };
  let users: ArrayLike<unknown> = [];
  await parquetRead({
    file,
    metadata,
    compressors: decompressors,
    columns: ['user_id'],
    onChunk: ({ columnData }) => (users = columnData),
  });
  if (users.length !== expected.rowCount) {
    throw new ChunkIntegrityError(`chunk column user_id holds ${users.length} values, the catalog says ${expected.rowCount} rows`);
  }
  const rows: RowArray[] = [];
  for (let i = 0; i < users.length; i++) {
    if (users[i] !== userId) continue;
    const row = new Map<string, string | null>();
    await parquetRead({
      file,
      metadata,
      compressors: decompressors,
      parsers,
      rowStart: i,
      rowEnd: i + 1,
      useOffsetIndex: true,
      onChunk: ({ columnName, columnData, rowStart }) => {
        const at = i - rowStart;
        if (at >= 0 && at < columnData.length) row.set(columnName, textOf(columnData[at]));
      },
    });
    rows.push(
      INTERACTION_COLUMNS.map((name) => {
        if (!row.has(name)) throw new ChunkIntegrityError(`chunk has no column ${name} at row ${i}`);
        return row.get(name) ?? null;
      }),
    );
  }
  return rows;
}

/**
 * Reads a chunk file back into its columns and checks it: every column present, the row count, id
 * range and rows' sha256 of its metadata equal to what the caller expects (the catalog's), and the
 * rows' checksum recomputed from the values equal to it too. Throws ChunkIntegrityError otherwise.
 */
export async function decodeParquetChunk(
  body: Uint8Array,
  expected: { checksum: string; rowCount: number; identity?: ChunkIdentity },
): Promise<ParquetColumns> {
  const file = toArrayBuffer(body);
  const metadata = checkedMetadata(body, expected);
  const byName = new Map<string, (string | null)[]>();
  await parquetRead({
    file,
    compressors: decompressors,
    parsers: { timestampFromMilliseconds: (millis: bigint) => datetimeOfMillis(Number(millis)) },
    onChunk: ({ columnName, columnData, rowStart }) => {
      // The strings and the timestamps' text come as they are wanted (nulls as null); only the id, a
      // bigint, needs its text. Copying every column into a new array was a tenth of a chunk's check.
      const values =
        columnName !== 'id' && Array.isArray(columnData)
          ? (columnData as (string | null)[])
          : Array.from(columnData as ArrayLike<string | bigint | null | undefined>, (v) =>
              v === null || v === undefined ? null : String(v),
            );
      const have = byName.get(columnName);
      if (!have) byName.set(columnName, rowStart === 0 ? values : [...new Array<null>(rowStart).fill(null), ...values]);
      else for (let i = 0; i < values.length; i++) have[rowStart + i] = values[i];
    },
  });
  const columns = INTERACTION_COLUMNS.map((name) => {
    const column = byName.get(name);
    if (!column) throw new ChunkIntegrityError(`chunk has no column ${name}`);
    if (column.length !== expected.rowCount) {
      throw new ChunkIntegrityError(`chunk column ${name} holds ${column.length} values, the catalog says ${expected.rowCount} rows`);
    }
    return column;
  });
  const actual = checksumOfColumns(columns);
  if (actual !== expected.checksum)
    throw new ChunkIntegrityError(`chunk checksum mismatch: stored ${expected.checksum}, computed ${actual}`);
  return { columns, rowCount: expected.rowCount, metadata };
}
