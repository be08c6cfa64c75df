/**
 * One message's part of a user's erasure: the user's rows that occurred up to the erasure's instant go
 * from the message's hot tables and from every archived chunk that holds them, and the message's
 * `user_messages` pair with them. Run by the message's actor between its moves (workflows/lifecycle.ts),
 * so it never meets an archive or a restore of the message half-way; it claims the move fence
 * (src/storage/fence.ts) first, so an attempt of a move still running from an earlier run of the actor
 * stops at its next write and changes nothing more.
 *
 * A chunk is rewritten, never edited: the rows without the user's are written as a new chunk beside it
 * (for S3 a new object `<seq>.e-<rewrite>.parquet`, deterministic per request so a retry writes the same
 * bytes to the same key), read back and checked like any archived chunk, and then swapped in one
 * transaction that compares the catalog row with what was read (checksum, store, object), records the
 * old object as an orphan and counts the generation's manifest again, so the catalog agrees with itself
 * after every swap. The old object is deleted after the commit; a crash between the two leaves the
 * orphan row, which the next erasure of the message deletes (never an object a catalog row names). An
 * archived generation's manifest.json is written again at the end. Only chunks whose user filter may
 * hold the user are read.
 *
 * Safe to run again: the rows already erased are not there to be found, a chunk already swapped no
 * longer holds the user (and its filter says so), and an orphan already deleted is no error.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import { chunkRowAsRead, type ArchiveStores, type ChunkKey, type ChunkRecord } from '../archive/store';
import { mayHoldUser } from '../archive/userFilter';
import { ER_NO_SUCH_TABLE, sqlErrno } from '../dataplane/sql';
import type { MessageRef } from '../shared/types';
import { canonicalChunkOfRowArrays, INTERACTION_COLUMNS, USER_ID_INDEX, type RowArray } from '../storage/chunkCodec';
import { sumVerifiedChunks } from '../storage/archiver';
import { claimFence, randomAttemptToken, type MovePhase } from '../storage/fence';
import { messageHotTables } from '../storage/hotTables';
import { deleteErasedHotRows, type ErasureCounts } from './erasureRecords';

export interface EraseMessageInput {
  ref: MessageRef;
  userId: string;
  /** ISO instant: the user's rows that occurred up to it are erased; later ones are a new life and stay. */
  erasedThrough: string;
  requestId: string;
}

export interface EraseMessageOptions {
  /** Called after each chunk read; the activity heartbeats from here. */
  onChunk?: (counts: ErasureCounts) => void | Promise<void>;
  /** The attempt's fence token (fence.ts activityAttemptToken); a fresh one when not given. */
  fence?: { token: string };
}

export class ErasureConflictRetry extends Error {
  override name = 'ErasureConflictRetry';
}

const OCCURRED_AT_INDEX = INTERACTION_COLUMNS.indexOf('occurred_at');
/** A chunk whose catalog row keeps changing under the swap (a migration moving it) is read this often before the attempt gives up and is retried. */
const SWAPS_PER_CHUNK = 3;

const toSql = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;

/** The name of this request's rewrites in object keys: short, and the same for every attempt. */
export function rewriteVariant(requestId: string): string {
  return `e-${createHash('sha256').update(requestId).digest('hex').slice(0, 16)}`;
}

type ChunkRow = ChunkRecord & { generation: number; user_filter: Buffer | null };

export async function eraseUserFromMessage(
  db: Db,
  stores: ArchiveStores,
  input: EraseMessageInput,
  opts: EraseMessageOptions = {},
): Promise<ErasureCounts> {
  const { ref, userId } = input;
  const through = toSql(new Date(input.erasedThrough).toISOString());
  const where = { message_kind: ref.kind, message_id: ref.id };
  const counts: ErasureCounts = { hotRows: 0, archivedRows: 0, chunksRead: 0, chunksRewritten: 0, bytesRewritten: 0 };
  // The actor runs no move meanwhile, but an attempt of one that an earlier run started (a reset or a
  // terminate) may still be going: claiming the fence as it stands stops that attempt at its next write.
  const [held] = await db('move_fences').where(where).select<{ generation: number; phase: MovePhase }[]>('generation', 'phase');
  await claimFence(db, ref, {
    generation: Number(held?.generation ?? 0),
    phase: held?.phase === 'restore' ? 'restore' : 'archive',
    token: opts.fence?.token ?? randomAttemptToken(),
  });
  await sweepOrphans(db, stores, ref);

  for (const table of await messageHotTables(db, ref)) {
    try {
      counts.hotRows += await deleteErasedHotRows(db, table.name, ref, userId, through);
    } catch (err) {
      // A draining table dropped once its rows were all in chunks: they are erased below.
      if (sqlErrno(err) !== ER_NO_SUCH_TABLE) throw err;
    }
  }

  const chunks = await db('archive_chunks')
    .where(where)
    .whereNotNull('verified_at')
    .orderBy(['generation', 'seq'])
    .select<ChunkRow[]>('generation', 'seq', 'checksum', 'row_count', 'store', 'object_key', 'user_filter');
  let laterRows = false;
  for (const chunk of chunks) {
    if (!mayHoldUser(chunk.user_filter, userId)) continue;
    const key: ChunkKey = { ...where, generation: Number(chunk.generation) };
    const outcome = await eraseFromChunk(db, stores, key, chunk, userId, through, rewriteVariant(input.requestId));
    counts.chunksRead += outcome.reads;
    if (outcome.erased > 0) {
      counts.archivedRows += outcome.erased;
      counts.chunksRewritten += 1;
      counts.bytesRewritten += outcome.bytes;
    }
    laterRows ||= outcome.laterRows;
    await opts.onChunk?.(counts);
  }
  // Every archived generation whose description lags its manifest, not only those this attempt changed:
  // an attempt that died after its last swap left the description to the next one, which swaps nothing.
  const lagging = await db('archive_manifests')
    .where(where)
    .andWhere('status', 'archived')
    .andWhereRaw('(described_checksum IS NULL OR described_checksum <> checksum)')
    .pluck<number[]>('generation');
  for (const generation of lagging) await describeAgain(db, stores, { ...where, generation: Number(generation) });
  await forgetPair(db, ref, userId, laterRows);
  return counts;
}

interface ChunkOutcome {
  reads: number;
  erased: number;
  bytes: number;
  /** The chunk keeps rows of the user that occurred after the erasure. */
  laterRows: boolean;
}

async function eraseFromChunk(
  db: Db,
  stores: ArchiveStores,
  key: ChunkKey,
  first: ChunkRecord,
  userId: string,
  through: string,
  variant: string,
): Promise<ChunkOutcome> {
  let record: ChunkRecord | undefined = first;
  for (let reads = 1; record; reads++) {
    const store = stores.get(record.store);
    const { columns, rowCount } = await store.read(db, key, record);
    const users = columns[USER_ID_INDEX];
    const times = columns[OCCURRED_AT_INDEX];
    const keep: RowArray[] = [];
    let laterRows = false;
    for (let i = 0; i < rowCount; i++) {
      if (users[i] !== userId) keep.push(columns.map((c) => c[i]));
      else if ((times[i] ?? '') > through) {
        laterRows = true;
        keep.push(columns.map((c) => c[i]));
      }
    }
    const erased = rowCount - keep.length;
    if (erased === 0) return { reads, erased: 0, bytes: 0, laterRows };

    const written = keep.length > 0 ? await store.write(key, record.seq, canonicalChunkOfRowArrays(keep), variant) : null;
    const previous: ChunkRecord = record;
    const swapped = await db.transaction(async (trx) => {
      const ok = written
        ? await store.replace(trx, key, previous, written)
        : (await chunkRowAsRead(trx('archive_chunks'), key, previous).delete()) === 1;
      if (!ok) return false;
      if (previous.object_key) await trx('archive_orphans').insert({ ...key, store: previous.store, object_key: previous.object_key });
      await recountManifest(trx, key);
      return true;
    });
    if (swapped) {
      await sweepOrphans(db, stores, { kind: key.message_kind as MessageRef['kind'], id: key.message_id });
      return { reads, erased, bytes: written?.bytes ?? 0, laterRows };
    }
    // The catalog row changed since it was read (moved to another store meanwhile): the object written
    // for it is no one's; read the chunk again as it is now.
    if (written?.objectKey && written.objectKey !== previous.object_key) {
      await store.removeBodies(key, [{ ...previous, object_key: written.objectKey }]);
    }
    if (reads >= SWAPS_PER_CHUNK) {
      throw new ErasureConflictRetry(
        `chunk ${previous.seq} of ${key.message_kind}:${key.message_id} generation ${key.generation} kept changing`,
      );
    }
    record = await db('archive_chunks')
      .where({ ...key, seq: previous.seq })
      .whereNotNull('verified_at')
      .first<ChunkRecord | undefined>('seq', 'checksum', 'row_count', 'store', 'object_key');
  }
  // The chunk went away (its generation restored by an attempt of an older actor run): nothing to rewrite.
  return { reads: 0, erased: 0, bytes: 0, laterRows: false };
}

/** Inside the swap's transaction: the generation's manifest counted again from its chunks, so the catalog always agrees with itself. */
async function recountManifest(trx: Knex.Transaction, key: ChunkKey): Promise<void> {
  const sums = await sumVerifiedChunks(trx, key);
  await trx('archive_manifests').where(key).update({
    row_count: sums.rowCount,
    chunk_count: sums.chunkCount,
    compressed_bytes: sums.compressedBytes,
    checksum: sums.checksum,
  });
}

/** After its chunks changed: an archived generation's description beside its chunks (manifest.json), unless it is current. */
async function describeAgain(db: Db, stores: ArchiveStores, key: ChunkKey): Promise<void> {
  const m = await db('archive_manifests').where(key).first<
    | {
        status: string;
        store: string;
        row_count: number;
        chunk_count: number;
        compressed_bytes: number;
        checksum: string;
        described_checksum: string | null;
      }
    | undefined
  >('status', 'store', 'row_count', 'chunk_count', 'compressed_bytes', 'checksum', 'described_checksum');
  if (m?.status !== 'archived' || m.described_checksum === m.checksum) return;
  await stores.get(m.store).describeGeneration(db, key, {
    status: 'archived',
    rowCount: Number(m.row_count),
    chunkCount: Number(m.chunk_count),
    bytes: Number(m.compressed_bytes),
    checksum: m.checksum,
  });
  await db('archive_manifests').where(key).andWhere({ checksum: m.checksum }).update({ described_checksum: m.checksum });
}

/**
 * The (user, message) pair goes unless the user has rows of a new life in the message. Deleted first,
 * in one transaction with the look at the hot tables: a batch storing a later event waits for the
 * delete and puts the pair back itself, or has committed and its row is seen here.
 */
async function forgetPair(db: Db, ref: MessageRef, userId: string, laterArchived: boolean): Promise<void> {
  const pair = { user_id: userId, message_kind: ref.kind, message_id: ref.id };
  await db.transaction(async (trx) => {
    await trx('user_messages').where(pair).delete();
    let later = laterArchived;
    for (const table of later ? [] : await messageHotTables(trx, ref)) {
      try {
        if (await trx(table.name).where({ message_kind: ref.kind, message_id: ref.id, user_id: userId }).first('id')) later = true;
      } catch (err) {
        if (sqlErrno(err) !== ER_NO_SUCH_TABLE) throw err;
      }
      if (later) break;
    }
    if (later) await trx('user_messages').insert(pair);
  });
}

/** Deletes the objects rewrites left behind for this message, unless a catalog row names one again. */
export async function sweepOrphans(db: Db, stores: ArchiveStores, ref: MessageRef): Promise<void> {
  const orphans = await db('archive_orphans')
    .where({ message_kind: ref.kind, message_id: ref.id })
    .select<{ id: number; generation: number; store: string; object_key: string }[]>('id', 'generation', 'store', 'object_key');
  for (const o of orphans) {
    const key: ChunkKey = { message_kind: ref.kind, message_id: ref.id, generation: Number(o.generation) };
    const named: unknown = await db('archive_chunks')
      .where({ ...key, store: o.store, object_key: o.object_key })
      .first('seq');
    if (!named)
      await stores.get(o.store).removeBodies(key, [{ seq: 0, checksum: '', row_count: 0, store: o.store, object_key: o.object_key }]);
    await db('archive_orphans').where({ id: o.id }).delete();
  }
}
