/**
 * Where archived chunks live. The catalog (`archive_manifests`, `archive_chunks`) is always in MySQL
 * and is what the service trusts; a store holds the chunks' bytes:
 *
 * - `mysql`: in the chunk's catalog row (Brotli column-JSON, src/storage/chunkCodec.ts), as every
 *   generation archived before object storage was;
 * - `s3`: one Parquet object per chunk in S3-compatible object storage (src/archive/s3Store.ts).
 *
 * A chunk counts only once its catalog row commits, and a store writes that row only after the
 * chunk's bytes are stored and read back as exactly the rows they came from. A store is chosen per
 * generation (`archive_manifests.store`) and read per chunk (`archive_chunks.store`), so generations
 * archived anywhere before stay restorable whatever the worker's setting is now.
 */
import type { Knex } from 'knex';
import type { ArchiveStoreName } from '../config';
import type { Db } from '../db/knex';
import { USER_ID_INDEX, type CanonicalChunk, type RowArray } from '../storage/chunkCodec';

/** What names one generation's chunks in `archive_chunks`. */
export interface ChunkKey {
  message_kind: string;
  message_id: string;
  generation: number;
}

/** A chunk's catalog row, as far as reading and removing its bytes needs it. */
export interface ChunkRecord {
  seq: number;
  checksum: string;
  row_count: number | string;
  store: string;
  object_key: string | null;
}

/** A chunk whose bytes are stored and verified, not yet in the catalog. */
export interface WrittenChunk {
  checksum: string;
  rowCount: number;
  firstId: string;
  lastId: string;
  bytes: number;
  codec: string;
  /** The bytes themselves when the catalog row carries them (the MySQL store). */
  payload: Buffer | null;
  objectKey: string | null;
  /** Which users the chunk may hold (src/archive/userFilter.ts). */
  userFilter: Buffer | null;
}

/** A verified chunk's values, column by column in INTERACTION_COLUMNS order. */
export interface ChunkColumns {
  columns: (string | null)[][];
  rowCount: number;
}

/** What one generation holds, as its manifest says once finalized. */
export interface GenerationSummary {
  rowCount: number;
  chunkCount: number;
  bytes: number;
  checksum: string;
}

export interface ArchiveStore {
  readonly name: ArchiveStoreName;
  /** For logs and the actor's status: the bucket and prefix, or the table. */
  readonly location: string;
  /**
   * Stores a chunk's bytes where they live before the catalog row, and proves they read back as the
   * rows given. Safe to repeat: the same generation, seq and rows give the same place and content.
   * The chunk's bytes are the store's from then on (they may be moved to another thread). A `variant`
   * (a rewrite's name) puts the bytes beside the chunk's current ones instead of over them.
   */
  write(key: ChunkKey, seq: number, chunk: CanonicalChunk, variant?: string): Promise<WrittenChunk>;
  /** Inside the step's transaction (its fence checked): the chunk's catalog row, verified. */
  record(trx: Knex.Transaction, key: ChunkKey, seq: number, chunk: WrittenChunk): Promise<void>;
  /**
   * Inside a transaction: swaps a recorded chunk for a rewritten one (written with a variant), only if
   * its catalog row is still `previous` (same checksum, store and object). False when it changed meanwhile.
   */
  replace(trx: Knex.Transaction, key: ChunkKey, previous: ChunkRecord, chunk: WrittenChunk): Promise<boolean>;
  /** A chunk's values, verified against its catalog row; ChunkIntegrityError when they differ or are gone. */
  read(db: Db, key: ChunkKey, record: ChunkRecord): Promise<ChunkColumns>;
  /**
   * The rows of one user in a chunk (INTERACTION_COLUMNS order), for an access request. The MySQL store
   * verifies the whole chunk as `read` does; the S3 store checks the object against the SHA-256 the
   * server keeps and the file's metadata against the catalog row, and decodes only the pages holding
   * the user (src/archive/parquetChunk.ts parquetUserRows).
   */
  readUserRows(db: Db, key: ChunkKey, record: ChunkRecord, userId: string): Promise<RowArray[]>;
  /** Removes chunks' bytes ahead of their catalog rows; bytes already gone are no error. */
  removeBodies(key: ChunkKey, records: readonly ChunkRecord[]): Promise<void>;
  /** After a generation is finalized: what describes it beside its chunks (the bucket's manifest.json). */
  describeGeneration(db: Db, key: ChunkKey, summary: GenerationSummary & { status: string }): Promise<void>;
  /** After a generation's chunks are gone: its description goes too. */
  forgetGeneration(key: ChunkKey): Promise<void>;
}

/** The stores a worker can use: `target` for new generations, and each configured store by name for reading. */
export interface ArchiveStores {
  readonly target: ArchiveStore;
  get(name: string): ArchiveStore;
}

export class StoreNotConfiguredError extends Error {
  override name = 'StoreNotConfiguredError';
}

export function archiveStores(target: ArchiveStore, others: readonly ArchiveStore[] = []): ArchiveStores {
  const byName = new Map<string, ArchiveStore>([...others, target].map((s) => [s.name, s]));
  return {
    target,
    get(name) {
      const store = byName.get(name);
      if (!store) {
        throw new StoreNotConfiguredError(
          `chunks are kept in the ${name} archive store, which this process has no settings for` +
            (name === 's3' ? ' (set S3_BUCKET, S3_ENDPOINT and the other S3_* settings)' : ''),
        );
      }
      return store;
    },
  };
}

/** A written chunk's values in its catalog row, marked verified: its bytes are in `payload` or at `object_key`. */
function chunkRowValues(trx: Knex.Transaction, chunk: WrittenChunk) {
  return {
    first_id: chunk.firstId,
    last_id: chunk.lastId,
    row_count: chunk.rowCount,
    checksum: chunk.checksum,
    codec: chunk.codec,
    payload: chunk.payload,
    object_key: chunk.objectKey,
    bytes: chunk.bytes,
    user_filter: chunk.userFilter,
    verified_at: trx.raw('CURRENT_TIMESTAMP(3)'),
  };
}

/** A written chunk's catalog row. */
export async function insertChunkRecord(trx: Knex.Transaction, key: ChunkKey, seq: number, chunk: WrittenChunk, store: ArchiveStoreName) {
  await trx('archive_chunks').insert({ ...key, seq, ...chunkRowValues(trx, chunk), store });
}

/** The chunk's catalog row, only while it is still as `r` read it (checksum, store and object). */
export function chunkRowAsRead(q: Knex.QueryBuilder, key: ChunkKey, r: ChunkRecord): Knex.QueryBuilder {
  const base = q.where({ ...key, seq: r.seq, checksum: r.checksum, store: r.store });
  return r.object_key === null ? base.whereNull('object_key') : base.andWhere('object_key', r.object_key);
}

/** The compare-and-swap of a chunk's catalog row: true when `previous` was still what the row said. */
export async function replaceChunkRecord(
  trx: Knex.Transaction,
  key: ChunkKey,
  previous: ChunkRecord,
  chunk: WrittenChunk,
): Promise<boolean> {
  return (await chunkRowAsRead(trx('archive_chunks'), key, previous).update(chunkRowValues(trx, chunk))) === 1;
}

/** The rows of a chunk's columns (INTERACTION_COLUMNS order) whose user is `userId`. */
export function rowsOfUser(columns: readonly (readonly (string | null)[])[], userId: string): RowArray[] {
  const rows: RowArray[] = [];
  const users = columns[USER_ID_INDEX];
  for (let i = 0; i < users.length; i++) if (users[i] === userId) rows.push(columns.map((c) => c[i]));
  return rows;
}
