/**
 * The MySQL store: a chunk's bytes (Brotli column-JSON, src/storage/chunkCodec.ts) in its own catalog
 * row's `payload`, written, read back and checked in the step's transaction. Every generation archived
 * before object storage is here.
 */
import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import {
  CHUNK_CODEC,
  ChunkIntegrityError,
  decodeChunkColumns,
  encodeCanonicalChunk,
  INTERACTION_COLUMNS,
  verifyPayload,
} from '../storage/chunkCodec';
import {
  archiveStores,
  insertChunkRecord,
  replaceChunkRecord,
  rowsOfUser,
  type ArchiveStore,
  type ArchiveStores,
  type ChunkKey,
  type ChunkRecord,
  type WrittenChunk,
} from './store';

export class ChunkVanishedError extends Error {
  override name = 'ChunkVanishedError';
}

export function mysqlStore(): ArchiveStore {
  return {
    name: 'mysql',
    location: 'MySQL table archive_chunks',
    async write(_key, _seq, canonical) {
      const chunk = await encodeCanonicalChunk(canonical);
      return { ...chunk, bytes: chunk.payload.length, codec: CHUNK_CODEC, objectKey: null, userFilter: canonical.userFilter };
    },
    async record(trx: Knex.Transaction, key: ChunkKey, seq: number, chunk: WrittenChunk) {
      if (!chunk.payload) throw new Error('a chunk for the MySQL store carries its payload');
      await insertChunkRecord(trx, key, seq, chunk, 'mysql');
      const stored = await trx('archive_chunks')
        .where({ ...key, seq })
        .first<{ payload: Buffer } | undefined>('payload');
      if (!stored) throw new ChunkVanishedError(`chunk ${seq} of ${key.message_kind}:${key.message_id} vanished before it committed`);
      await verifyPayload(stored.payload, chunk.checksum);
    },
    async replace(trx: Knex.Transaction, key: ChunkKey, previous: ChunkRecord, chunk: WrittenChunk) {
      if (!chunk.payload) throw new Error('a chunk for the MySQL store carries its payload');
      if (!(await replaceChunkRecord(trx, key, previous, chunk))) return false;
      const stored = await trx('archive_chunks')
        .where({ ...key, seq: previous.seq })
        .first<{ payload: Buffer }>('payload');
      await verifyPayload(stored.payload, chunk.checksum);
      return true;
    },
    async read(db: Db, key: ChunkKey, record: ChunkRecord) {
      const stored = await db('archive_chunks')
        .where({ ...key, seq: record.seq })
        .first<{ payload: Buffer | null } | undefined>('payload');
      if (!stored?.payload) {
        throw new ChunkIntegrityError(
          `chunk ${record.seq} of ${key.message_kind}:${key.message_id} generation ${key.generation} is missing`,
        );
      }
      const decoded = await decodeChunkColumns(stored.payload, { checksum: record.checksum, rowCount: Number(record.row_count) });
      // In INTERACTION_COLUMNS order, whatever order the chunk stored its columns in.
      const columns = INTERACTION_COLUMNS.map((c) => {
        const index = decoded.columns.indexOf(c);
        if (index < 0) throw new ChunkIntegrityError(`chunk ${record.seq} of ${key.message_kind}:${key.message_id} has no column ${c}`);
        return decoded.data[index];
      });
      return { columns, rowCount: decoded.rowCount };
    },
    async readUserRows(db: Db, key: ChunkKey, record: ChunkRecord, userId: string) {
      return rowsOfUser((await this.read(db, key, record)).columns, userId);
    },
    // The payload goes with its catalog row.
    removeBodies: () => Promise.resolve(),
    describeGeneration: () => Promise.resolve(),
    forgetGeneration: () => Promise.resolve(),
  };
}

/** Stores for a caller that only ever knew MySQL (tests and benchmarks that call the archiver directly). */
export const mysqlOnly = (): ArchiveStores => archiveStores(mysqlStore());
