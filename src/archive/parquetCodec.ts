/**
 * Runs the S3 store's Parquet encoding and checking (src/archive/parquetTasks.ts) on worker threads of
 * a Piscina pool, so that an archive uses a second core while the main thread reads the next chunk
 * from the database and talks to S3; or inline, on the calling thread (threads: 0).
 */
import path from 'node:path';
import { Piscina } from 'piscina';
import { ChunkIntegrityError, columnsOfCanonicalBytes, type CanonicalChunk, type RowArray } from '../storage/chunkCodec';
import { encodeParquetColumns, type ChunkIdentity, type ParquetChunk } from './parquetChunk';
import * as tasks from './parquetTasks';

export interface ParquetCodec {
  /** Encodes a chunk's canonical rows; its bytes may be moved to a thread, and are not to be used after. */
  encode(chunk: CanonicalChunk, identity: ChunkIdentity): Promise<ParquetChunk>;
  /**
   * Decodes a chunk and checks it against the catalog's checksum and row count (and identity):
   * ChunkIntegrityError when it differs. `checkOnly` skips sending the columns back.
   */
  decode(
    body: Uint8Array,
    expected: { checksum: string; rowCount: number; identity?: ChunkIdentity },
    checkOnly?: boolean,
  ): Promise<(string | null)[][] | null>;
  /** Decodes and checks a chunk as `decode` does, and gives back only the rows of one user. */
  userRows(
    body: Uint8Array,
    expected: { checksum: string; rowCount: number; identity?: ChunkIdentity },
    userId: string,
  ): Promise<RowArray[]>;
  close(): Promise<void>;
}

/** A task's value, or its ChunkIntegrityError thrown again on this side. */
function orIntegrityError<T extends object>(result: tasks.Checked<T>): T {
  if (!result.ok) throw new ChunkIntegrityError(result.integrity);
  return result;
}

export function inlineParquetCodec(): ParquetCodec {
  return {
    encode: (chunk, identity) => Promise.resolve(encodeParquetColumns(columnsOfCanonicalBytes(chunk.bytes), chunk.checksum, identity)),
    decode: async (body, expected, checkOnly = false) => orIntegrityError(await tasks.decode({ body, ...expected, checkOnly })).columns,
    userRows: async (body, expected, userId) => orIntegrityError(await tasks.userRows({ body, ...expected, userId })).rows,
    close: () => Promise.resolve(),
  };
}

/** The task module as this process runs it: compiled JavaScript, or the sources through parquetThread.cjs. */
function taskFile(): string {
  return path.extname(__filename) === '.ts' ? path.join(__dirname, 'parquetThread.cjs') : path.join(__dirname, 'parquetTasks.js');
}

/** Heap a thread may keep per row of a chunk, with room to spare: its text, its columns, the file and its check. */
const THREAD_HEAP_BYTES_PER_ROW = 4096;
const THREAD_HEAP_BASE_MB = 32;

/**
 * A codec on `threads` worker threads, each with a heap bounded for chunks of up to `chunkRows` rows:
 * a thread collects its garbage as it nears the bound, where an unbounded one let it pile up to a
 * hundred megabytes and more in the worker. A larger chunk (a generation archived with a larger
 * ARCHIVE_CHUNK_ROWS, moved by `archive migrate`) is coded on the calling thread instead.
 */
export function threadedParquetCodec(threads: number, chunkRows: number): ParquetCodec {
  const pool = new Piscina({
    filename: taskFile(),
    minThreads: 0,
    maxThreads: threads,
    // A thread kept between an archive's chunks, not between archives hours apart.
    idleTimeout: 30_000,
    resourceLimits: {
      maxYoungGenerationSizeMb: 16,
      maxOldGenerationSizeMb: THREAD_HEAP_BASE_MB + Math.ceil((chunkRows * THREAD_HEAP_BYTES_PER_ROW) / 2 ** 20),
    },
  });
  const inline = inlineParquetCodec();
  return {
    async encode(canonical, identity) {
      if (canonical.rowCount > chunkRows) return inline.encode(canonical, identity);
      // One buffer moved to the thread instead of every value cloned; the thread parses it into the columns it encodes.
      const task: tasks.EncodeTask = { canonical: canonical.bytes, checksum: canonical.checksum, identity };
      const chunk = (await pool.run(task, { name: 'encode', transferList: [canonical.bytes.buffer] })) as ParquetChunk;
      // A Buffer arrives as a plain Uint8Array.
      return { ...chunk, body: Buffer.from(chunk.body.buffer, chunk.body.byteOffset, chunk.body.byteLength) };
    },
    async decode(body, expected, checkOnly = false) {
      // Columns wanted here (a restore) are decoded here: sending them back from a thread would copy
      // every value once more and keep both copies alive until the collector catches up.
      if (!checkOnly || expected.rowCount > chunkRows) return inline.decode(body, expected, checkOnly);
      const task: tasks.DecodeTask = { body, ...expected, checkOnly };
      return orIntegrityError((await pool.run(task, { name: 'decode' })) as tasks.DecodeResult).columns;
    },
    async userRows(body, expected, userId) {
      if (expected.rowCount > chunkRows) return inline.userRows(body, expected, userId);
      const task: tasks.UserRowsTask = { body, ...expected, userId };
      return orIntegrityError((await pool.run(task, { name: 'userRows' })) as tasks.UserRowsResult).rows;
    },
    close: () => pool.destroy(),
  };
}

export function parquetCodec(threads: number, chunkRows: number): ParquetCodec {
  return threads > 0 ? threadedParquetCodec(threads, chunkRows) : inlineParquetCodec();
}
