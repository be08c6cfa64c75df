/**
 * Moves one message's hot interaction rows into long-term storage, chunk by chunk.
 *
 * The message's current table is taken out of service (src/storage/hotTables.ts); from then on nothing
 * writes it. It is read in id order; each chunk is written to the generation's archive store
 * (src/archive/store.ts: an object in S3, or the catalog row itself in MySQL), read back and checked
 * against the rows' checksum, and only then recorded in the catalog. Once the recorded chunks account for
 * every row of the table, the table is dropped. A crash anywhere leaves every row either in the table
 * (still hot, as the availability record keeps it unavailable) or in a verified chunk, and usually both
 * until the drop: the next attempt resumes after the last chunk stored, and dropping happens only when
 * the counts agree. Rows that arrive during or after the archive land in a new table, made when the
 * first of them arrives, and are moved by the actor's next sweep, into the same generation.
 *
 * Each attempt claims the message's fence (src/storage/fence.ts) for its generation first, and every
 * write (the manifest opened, the table taken out of service, each chunk stored, the table dropped, the
 * manifest finalized) checks that it still holds it: an attempt Temporal gave up on, still running
 * beside its successor or after a restore, stops with StaleAttemptError before changing anything.
 */
import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import type { ArchiveManifest, MessageRef } from '../shared/types';
import { mysqlOnly } from '../archive/mysqlStore';
import type { ArchiveStore, ArchiveStores, ChunkKey, WrittenChunk } from '../archive/store';
import { canonicalChunkOfRowArrays, INTERACTION_COLUMNS, manifestChecksum, type CanonicalChunk, type RowArray } from './chunkCodec';
import { assertFenceHeld, checkFence, holdFenceForDdl, randomAttemptToken, runFenced, type MoveAttempt } from './fence';
import { beginDrain, endDrain, hotTableExists, type HotTable } from './hotTables';
import { retryOnDeadlock } from './deadlock';

export interface ArchiveCursor {
  /** Highest hot-row id already moved in this pass. */
  lastId: string;
}

export interface ArchiveOptions {
  chunkRows: number;
  /**
   * Where an earlier attempt got to. The stored chunks say it too, and they are what the archive
   * resumes from; the heartbeat carries it for operators reading the activity's details.
   */
  resumeFrom?: ArchiveCursor;
  /** Called after every chunk; the activity heartbeats the cursor from here. Awaited when it returns a promise. */
  /** After each chunk: the cursor, the rows this drain has moved, and the chunk's own rows. */
  onProgress?: (cursor: ArchiveCursor, moved: number, chunkRows: number) => void | Promise<void>;
  /**
   * The attempt's token (activities derive it from Temporal's attempt: fence.ts activityAttemptToken).
   * Without one the call claims with a fresh token, taking over from any attempt of the same generation.
   */
  fence?: { token: string };
  /** Where chunks go and are read from; MySQL alone when not given. */
  stores?: ArchiveStores;
}

export class ArchiveConflictError extends Error {
  override name = 'ArchiveConflictError';
}

const MESSAGE = (ref: MessageRef) => ({ message_kind: ref.kind, message_id: ref.id });

/** Inside a step's transaction: throws StaleAttemptError unless the attempt still holds the message's fence. */
export type FenceGuard = (trx: Knex.Transaction) => Promise<void>;

export async function archiveMessage(db: Db, ref: MessageRef, generation: number, opts: ArchiveOptions): Promise<ArchiveManifest> {
  const attempt: MoveAttempt = { generation, phase: 'archive', token: opts.fence?.token ?? randomAttemptToken() };
  return runFenced(db, ref, attempt, () => archiveClaimed(db, ref, attempt, opts));
}

async function archiveClaimed(db: Db, ref: MessageRef, attempt: MoveAttempt, opts: ArchiveOptions): Promise<ArchiveManifest> {
  const { generation } = attempt;
  const key = { ...MESSAGE(ref), generation };
  const guard: FenceGuard = (trx) => assertFenceHeld(trx, ref, attempt);
  const stores = opts.stores ?? mysqlOnly();
  const opened = await retryOnDeadlock(() =>
    db.transaction(async (trx) => {
      await guard(trx);
      // A generation begun now holds only rows whose users' pairs are in `user_messages` already (written
      // at ingestion, never removed by a move), so its restore need not add them (migration 005).
      await trx('archive_manifests')
        .insert({ ...key, status: 'archiving', user_messages_kept: true, store: stores.target.name, chunk_rows: opts.chunkRows })
        .onConflict(['message_kind', 'message_id', 'generation'])
        .ignore();
      const manifest = await trx('archive_manifests')
        .where(key)
        .first<{ status: string; store: string; chunk_rows: number | null; described_checksum: string | null }>(
          'status',
          'store',
          'chunk_rows',
          'described_checksum',
        );
      if (manifest?.status === 'restoring' || manifest?.status === 'restored') {
        throw new ArchiveConflictError(`generation ${generation} of ${ref.kind}:${ref.id} is ${manifest.status}; archive a new generation`);
      }
      if (manifest?.status === 'archived') {
        // A sweep of late interactions appends to an archived generation.
        await trx('archive_manifests').where(key).update({ status: 'archiving' });
      }
      if (manifest && manifest.chunk_rows === null) {
        // Begun before chunk sizes were pinned (migration 011): pinned from now on.
        await trx('archive_manifests').where(key).update({ chunk_rows: opts.chunkRows });
      }
      // Chunks left unverified by the releases that deleted rows chunk by chunk were never followed by the
      // delete of their rows, which are therefore still hot: the drain below stores them again.
      await trx('archive_chunks').where(key).whereNull('verified_at').delete();
      return {
        store: manifest?.store ?? stores.target.name,
        chunkRows: manifest?.chunk_rows ?? opts.chunkRows,
        describedChecksum: manifest?.described_checksum ?? null,
      };
    }),
  );
  // A generation stays in the store it was begun in: its sweeps append there, with its chunk size.
  const store = stores.get(opened.store);
  const drainOpts = { ...opts, chunkRows: Number(opened.chunkRows) };

  const table = await beginDrain(db, ref, guard, generation);
  if (table) {
    if (await hotTableExists(db, table)) await drainTable(db, key, table, store, drainOpts, guard);
    // A DROP commits by itself: the fence is held for it by the message's named lock instead.
    await endDrain(db, ref, table, { guard: (on, conn) => holdFenceForDdl(on, conn, ref, attempt) });
  }
  const manifest: ArchiveManifest = { ...(await finalizeManifest(db, ref, generation, guard)), store: opened.store };
  // Every cleanup interval sweeps an expired message, mostly finding nothing: no request to the store then.
  if (opened.describedChecksum === manifest.checksum) return manifest;
  // The bucket describes the generation too; written after the catalog, so it never lists a chunk the catalog lacks.
  await checkFence(db, ref, attempt);
  await store.describeGeneration(db, key, {
    status: 'archived',
    rowCount: manifest.rowCount,
    chunkCount: manifest.chunkCount,
    bytes: manifest.compressedBytes,
    checksum: manifest.checksum,
  });
  await db('archive_manifests').where(key).update({ described_checksum: manifest.checksum });
  return manifest;
}

/** Chunks under way at once: one is stored and checked while the next is read and compressed. */
const CHUNKS_IN_FLIGHT = 2;

/**
 * Reads a table no one writes any more into verified chunks of `key`, after the last chunk already
 * stored from it, and requires the chunks to account for every row before the table may go.
 */
async function drainTable(
  db: Db,
  key: ChunkKey,
  table: HotTable,
  store: ArchiveStore,
  opts: ArchiveOptions,
  guard: FenceGuard,
): Promise<void> {
  // A segment shares its table with other messages' rows: its statements name the message, which is a
  // prefix of its table's primary key. A table of its own is read as it is, in primary-key order.
  const message = table.shared ? { message_kind: key.message_kind, message_id: key.message_id } : {};
  const span = (await db(table.name).where(message).min('id as lo').max('id as hi').count('* as n').first()) as {
    lo: string | null;
    hi: string | null;
    n: number | string;
  };
  if (span.lo === null || span.hi === null) return;
  // The chunks this drain stored: from the sequence recorded when it began. A drain begun before
  // migration 016 recorded none; it drains a table of its own, whose ids are above every id of the
  // message's earlier tables, so its chunks are the generation's chunks within its id span.
  const fromSeq = table.drainFromSeq;
  const inSpan = () =>
    fromSeq !== null
      ? db('archive_chunks').where(key).whereNotNull('verified_at').andWhere('seq', '>=', fromSeq)
      : db('archive_chunks')
          .where(key)
          .whereNotNull('verified_at')
          .andWhere('first_id', '>=', span.lo as string)
          .andWhere('last_id', '<=', span.hi as string);
  const resumed = await inSpan().clone().max<{ last: string | null }>('last_id as last').first();
  let after = resumed?.last ?? '0';
  let seq = (await lastSeq(db, key)) + 1;

  // Each chunk is made canonical bytes as soon as it is read: the rows' strings die young, where a
  // chunk read ahead and kept as rows outlived the collector's first passes and piled up in the heap.
  const read = async (from: string): Promise<CanonicalChunk | null> => {
    const rows = (await db
      .from(table.name)
      .select(INTERACTION_COLUMNS)
      .where(message)
      .andWhere('id', '>', from)
      .orderBy('id')
      .limit(opts.chunkRows)
      .options({ rowsAsArray: true })) as RowArray[];
    return rows.length === 0 ? null : canonicalChunkOfRowArrays(rows);
  };
  const storing: { lastId: string; done: Promise<number> }[] = [];
  let moved = 0;
  const settleOldest = async () => {
    const oldest = storing.shift();
    if (!oldest) return;
    const chunkRows = await oldest.done;
    moved += chunkRows;
    await opts.onProgress?.({ lastId: oldest.lastId }, moved, chunkRows);
  };
  try {
    let next = read(after);
    for (;;) {
      const chunk = await next;
      if (!chunk) break;
      after = chunk.lastId;
      // The next chunk is read while this one is compressed, stored and checked.
      next = read(after);
      next.catch(() => undefined); // awaited at the top of the loop
      // Written to the store at once (encoded, and for object storage put and read back), but recorded in
      // the catalog only after the chunk before it has committed: the recorded chunks are always a prefix
      // of the table, which is what a resume after the last of them relies on.
      const chunkSeq = seq;
      const count = chunk.rowCount;
      const written = store.write(key, chunkSeq, chunk);
      written.catch(() => undefined); // awaited by its record
      const previous = storing.length ? storing[storing.length - 1].done : Promise.resolve(0);
      const done = previous.then(async () => {
        const stored: WrittenChunk = await written;
        await db.transaction(async (trx) => {
          await guard(trx);
          await store.record(trx, key, chunkSeq, stored);
        });
        return count;
      });
      done.catch(() => undefined); // awaited, in order, by settleOldest
      storing.push({ lastId: after, done });
      seq += 1;
      while (storing.length >= CHUNKS_IN_FLIGHT) await settleOldest();
    }
    while (storing.length) await settleOldest();
  } finally {
    // Nothing is left running against the pool when this returns or throws.
    await Promise.allSettled(storing.map((c) => c.done));
  }

  const stored = await inSpan().clone().sum<{ rows: string | number | null }>('row_count as rows').first();
  if (Number(stored?.rows ?? 0) !== Number(span.n)) {
    throw new ArchiveConflictError(
      `${table.name} holds ${span.n} rows of ${key.message_kind}:${key.message_id} but its chunks ${stored?.rows ?? 0}; it is kept for a look before anything is dropped`,
    );
  }
}

async function lastSeq(db: Db, key: ChunkKey): Promise<number> {
  const row = await db('archive_chunks').where(key).max<{ m: number | null }>('seq as m').first();
  return Number(row?.m ?? 0);
}

/** Sums the generation's verified chunks into its manifest and marks it archived; `guard` (the attempt's fence) is checked in the same transaction. */
export async function finalizeManifest(db: Db, ref: MessageRef, generation: number, guard?: FenceGuard): Promise<ArchiveManifest> {
  return retryOnDeadlock(() =>
    db.transaction(async (trx) => {
      await guard?.(trx);
      return finalizeIn(trx, ref, generation);
    }),
  );
}

/** What a generation's verified chunks add up to, as its manifest records it. */
export async function sumVerifiedChunks(
  db: Knex.Transaction,
  key: ChunkKey,
): Promise<Pick<ArchiveManifest, 'rowCount' | 'chunkCount' | 'compressedBytes' | 'checksum'>> {
  const chunks = await db('archive_chunks')
    .where(key)
    .whereNotNull('verified_at')
    .orderBy('seq')
    .select<{ checksum: string; row_count: number; bytes: number }[]>(
      'checksum',
      'row_count',
      db.raw('COALESCE(bytes, LENGTH(payload)) AS bytes'),
    );
  return {
    rowCount: chunks.reduce((n, c) => n + Number(c.row_count), 0),
    chunkCount: chunks.length,
    compressedBytes: chunks.reduce((n, c) => n + Number(c.bytes), 0),
    checksum: manifestChecksum(chunks.map((c) => c.checksum)),
  };
}

async function finalizeIn(db: Knex.Transaction, ref: MessageRef, generation: number): Promise<ArchiveManifest> {
  const key = { ...MESSAGE(ref), generation };
  const manifest: ArchiveManifest = { kind: ref.kind, id: ref.id, generation, ...(await sumVerifiedChunks(db, key)) };
  await db('archive_manifests')
    .where(key)
    .update({
      status: 'archived',
      row_count: manifest.rowCount,
      chunk_count: manifest.chunkCount,
      compressed_bytes: manifest.compressedBytes,
      checksum: manifest.checksum,
      archived_at: db.raw('CURRENT_TIMESTAMP(3)'),
    });
  return manifest;
}
