/**
 * Moves one message's hot interaction rows into long-term storage, chunk by chunk.
 *
 * MariaDB: per chunk, one transaction deletes the next N rows in id order, by their ids, with
 * `DELETE … RETURNING`, compresses what it returned, stores the chunk marked verified, reads it back
 * and checks it, and commits. The rows and their chunk change places atomically: a crash at any point
 * rolls the chunk back and leaves its rows hot. Each row is read once, by the statement that deletes it.
 *
 * MySQL (no `RETURNING`): per chunk, read N rows in id order → compress → commit the chunk → read the
 * chunk back and verify it → in one transaction, take the chunk's rows (by id, locked), check that they
 * are still exactly the chunk's rows, delete them and mark the chunk verified; anything else rolls
 * back. A crash at any point leaves either hot rows with no committed chunk (re-read), or a committed
 * unverified chunk whose rows are still hot (verified and deleted on resume); never a row in both
 * places once verified, never a row in neither.
 */
import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import type { ArchiveManifest, MessageRef } from '../shared/types';
import {
  checksumOfRowArrays,
  CHUNK_CODEC,
  compareIds,
  decodeChunkColumns,
  encodeRowArrays,
  INTERACTION_COLUMN_LIST,
  INTERACTION_COLUMNS,
  manifestChecksum,
  verifyPayload,
  type EncodedChunk,
  type RowArray,
} from './chunkCodec';
import { retryOnDeadlock } from './deadlock';
import { supportsReturning } from './returning';

export interface ArchiveCursor {
  /** Highest hot-row id already moved in this pass. */
  lastId: string;
}

export interface ArchiveOptions {
  chunkRows: number;
  resumeFrom?: ArchiveCursor;
  /**
   * Chunks in flight, each in its own transaction. MariaDB: at least 2 (default 2), so that one
   * chunk's DELETE runs while the previous chunk is encoded and stored. MySQL: chunks verified and
   * deleted at the same time (default 1); more helps only when the database has idle cores, and every
   * chunk in flight is a few megabytes more in the worker.
   */
  parallelDeletes?: number;
  /**
   * How rows leave the hot table: taken by MariaDB's DELETE ... RETURNING, which reads them in the
   * same statement, or read, stored, then locked, compared and deleted (MySQL). Detected from the
   * server when not given.
   */
  deleteReturning?: boolean;
  /** Called after every chunk; the activity heartbeats the cursor from here. Awaited when it returns a promise. */
  onProgress?: (cursor: ArchiveCursor, moved: number) => void | Promise<void>;
}

export class ArchiveConflictError extends Error {
  override name = 'ArchiveConflictError';
}

const MESSAGE = (ref: MessageRef) => ({ message_kind: ref.kind, message_id: ref.id });

/** What names one generation's chunks in `archive_chunks`. */
export interface ChunkKey {
  message_kind: string;
  message_id: string;
  generation: number;
}

const DEFAULT_PARALLEL_DELETES = 1;
const DEFAULT_CHUNKS_IN_FLIGHT = 2;

/** What a committed chunk claims to hold: its rows' ids and the checksum of their canonical bytes. */
interface ChunkClaim {
  seq: number;
  ids: string[];
  rowCount: number;
  checksum: string;
}

export async function archiveMessage(db: Db, ref: MessageRef, generation: number, opts: ArchiveOptions): Promise<ArchiveManifest> {
  const key = { ...MESSAGE(ref), generation };
  // A generation begun now holds only rows whose users' pairs are in `user_messages` already (written at
  // ingestion, never removed by a move), so its restore need not add them (migration 005).
  await db('archive_manifests')
    .insert({ ...key, status: 'archiving', user_messages_kept: true })
    .onConflict(['message_kind', 'message_id', 'generation'])
    .ignore();
  const manifest = await db('archive_manifests').where(key).first<{ status: string }>();
  if (manifest?.status === 'restoring' || manifest?.status === 'restored') {
    throw new ArchiveConflictError(`generation ${generation} of ${ref.kind}:${ref.id} is ${manifest.status}; archive a new generation`);
  }
  if (manifest?.status === 'archived') {
    // A sweep of late interactions appends to an archived generation.
    await db('archive_manifests').where(key).update({ status: 'archiving' });
  }

  // A crash between committing a chunk and deleting its hot rows leaves it unverified (the MySQL path,
  // or a MariaDB worker of a version that archived that way too): finish it first.
  const unverified = (await db('archive_chunks')
    .where(key)
    .whereNull('verified_at')
    .orderBy('seq')
    .select('seq', 'row_count', 'checksum', 'payload')) as { seq: number; row_count: number; checksum: string; payload: Buffer }[];
  for (const c of unverified) {
    const decoded = await decodeChunkColumns(c.payload, { checksum: c.checksum, rowCount: Number(c.row_count) });
    const ids = decoded.data[decoded.columns.indexOf('id')] as string[];
    await verifyAndDelete(db, ref, generation, { seq: Number(c.seq), ids, rowCount: ids.length, checksum: c.checksum }, opts.deleteReturning);
  }

  // Sequence numbers are handed out here rather than read per chunk; a second attempt running at the
  // same time (a worker presumed dead that is not) collides on the primary key and fails instead.
  const firstSeq = (await lastSeq(db, ref, generation)) + 1;
  const returning = opts.deleteReturning ?? (await supportsReturning(db));
  if (returning) await moveByDeleting(db, ref, generation, firstSeq, opts);
  else await moveByCopying(db, ref, generation, firstSeq, opts);
  return finalizeManifest(db, ref, generation);
}

/**
 * Chunks under way, oldest first. The cursor only moves past a chunk once it and every chunk before it
 * have finished, so a resume never skips one. A chunk's `done` gives the rows it moved, or null when
 * it found the hot rows changed under it and moved none.
 */
function chunkQueue(onProgress: ArchiveOptions['onProgress']) {
  const inFlight: { lastId: string; done: Promise<number | null> }[] = [];
  let moved = 0;
  return {
    get length() {
      return inFlight.length;
    },
    push(lastId: string, done: Promise<number | null>) {
      inFlight.push({ lastId, done });
    },
    /** Waits for the oldest chunk and reports the cursor past it; false when its hot rows had changed. */
    async settleOldest(): Promise<boolean> {
      const oldest = inFlight.shift();
      if (!oldest) return true;
      const rows = await oldest.done;
      if (rows !== null) moved += rows;
      await onProgress?.({ lastId: oldest.lastId }, moved);
      return rows !== null;
    },
    /** Resolves once every chunk still under way has finished, whether it committed or failed. */
    allSettled: () => Promise.allSettled(inFlight.map((c) => c.done)),
  };
}

/**
 * MariaDB: each chunk is one transaction. The next N ids are read from the message's index, and
 * `DELETE … RETURNING` takes those rows out of the hot table and hands them back as they were, locked;
 * they are compressed, stored as a chunk already marked verified, read back and checked against their
 * checksum, and only then committed. At every commit each row is in exactly one place; a crash or an
 * error anywhere rolls the whole chunk back, rows hot again. Every row is read once, by the statement
 * that deletes it.
 *
 * The next chunk starts as soon as the previous one's DELETE has returned (after its last id), so the
 * database deletes one chunk while the worker compresses and stores the other.
 */
async function moveByDeleting(db: Db, ref: MessageRef, generation: number, firstSeq: number, opts: ArchiveOptions): Promise<void> {
  let seq = firstSeq;
  let after = opts.resumeFrom?.lastId ?? '0';
  // Always end with one pass from the start: rows whose ids were allocated before the cursor but
  // committed after it passed (auto-increment order is not commit order) are found there.
  let rescanned = false;
  const depth = Math.max(2, opts.parallelDeletes ?? DEFAULT_CHUNKS_IN_FLIGHT);
  const queue = chunkQueue(opts.onProgress);
  try {
    for (;;) {
      while (queue.length >= depth) await queue.settleOldest();
      const chunk = takeChunk(db, ref, generation, seq, after, opts.chunkRows);
      const lastId = await chunk.taken;
      if (lastId === null) {
        while (queue.length) await queue.settleOldest();
        if (rescanned) break;
        rescanned = true;
        after = '0';
        continue;
      }
      queue.push(lastId, chunk.done);
      seq += 1;
      after = lastId;
    }
  } finally {
    // Nothing is left running against the pool when this returns or throws; failures after the first
    // are rolled back like it and reported through it.
    await queue.allSettled();
  }
}

/**
 * One chunk's transaction. `taken` resolves with the chunk's last id (null when there is no row left
 * after `after`) as soon as its DELETE has returned, so the next chunk can start; `done` with the rows
 * moved once the transaction has committed.
 */
function takeChunk(db: Db, ref: MessageRef, generation: number, seq: number, after: string, chunkRows: number) {
  const key = { ...MESSAGE(ref), generation };
  let announce: (lastId: string | null) => void = () => undefined;
  let fail: (err: unknown) => void = () => undefined;
  const taken = new Promise<string | null>((resolve, reject) => {
    announce = resolve;
    fail = reject;
  });
  const done = retryOnDeadlock(() =>
    db.transaction(
      async (trx) => {
        // The message's own index holds the ids: nothing is locked or read from the rows here. A DELETE
        // … ORDER BY id LIMIT would do in one statement, but the optimizer may walk the primary key for
        // it instead, locking other messages' rows as it passes them and waiting on, or deadlocking
        // with, their own archives.
        const ids = await nextChunkIds(trx, ref, after, chunkRows);
        if (ids.length === 0) return 0;
        // Primary-key lookups only: exactly these rows are locked. A row another attempt took meanwhile
        // is simply not returned; the chunk holds what this statement deleted.
        const [deleted] = (await trx
          .raw(
            `DELETE FROM interactions WHERE message_kind = ? AND message_id = ? AND id IN (${ids.map(() => '?').join(', ')}) RETURNING ${INTERACTION_COLUMN_LIST}`,
            [key.message_kind, key.message_id, ...ids],
          )
          .options({ rowsAsArray: true })) as unknown as [RowArray[]];
        // The next chunk starts now: its DELETE then runs while this one is compressed and stored. Starting
        // it as soon as the ids are known, two DELETEs at once, was no faster on two cores.
        announce(ids[ids.length - 1]);
        if (deleted.length === 0) return 0;
        const rows = [...deleted].sort((x, y) => compareIds(x[0] as string, y[0] as string));
        await storeVerifiedChunk(trx, key, seq, await encodeRowArrays(rows));
        return rows.length;
      },
      { isolationLevel: 'read committed' },
    ),
  );
  // Settling a promise twice is a no-op: these only count when the DELETE found no row, or failed.
  done.then(() => announce(null), fail);
  // A failure after the DELETE returned reaches the caller through `done`.
  taken.catch(() => undefined);
  return { taken, done };
}

/**
 * MySQL (no DELETE ... RETURNING): read and compress a chunk, commit it, then verify it and delete
 * exactly its rows, if they are still the chunk's rows, in the transaction that marks it verified.
 * Reading and compressing the next chunk, and committing it, overlap with deleting the previous one.
 */
async function moveByCopying(db: Db, ref: MessageRef, generation: number, firstSeq: number, opts: ArchiveOptions): Promise<void> {
  const key = { ...MESSAGE(ref), generation };
  let seq = firstSeq;
  // Always end with one pass from the start: rows whose ids were allocated before the cursor but
  // committed after it passed (auto-increment order is not commit order) are found there.
  let rescanned = false;
  const parallel = Math.max(1, opts.parallelDeletes ?? DEFAULT_PARALLEL_DELETES);
  // Chunks committed and being verified and deleted.
  const queue = chunkQueue(opts.onProgress);
  const settleOldest = async () => {
    // The hot rows changed under a chunk: the pass from the start must run again.
    if (!(await queue.settleOldest())) rescanned = false;
  };

  let next = prepareChunk(db, ref, opts.resumeFrom?.lastId ?? '0', opts.chunkRows);
  for (;;) {
    const prepared = await next;
    if (!prepared) {
      while (queue.length) await settleOldest();
      if (rescanned) break;
      rescanned = true;
      next = prepareChunk(db, ref, '0', opts.chunkRows);
      continue;
    }
    // Read and compress the following chunk while this one is committed, verified and deleted.
    next = prepareChunk(db, ref, prepared.chunk.lastId, opts.chunkRows);
    // Handled when awaited above; without this a failure while this chunk is still being moved would
    // count as unhandled and take the whole worker down.
    next.catch(() => undefined);

    const claim: ChunkClaim = { seq, ids: prepared.ids, rowCount: prepared.chunk.rowCount, checksum: prepared.chunk.checksum };
    await db('archive_chunks').insert(chunkRow(key, seq, prepared.chunk));
    seq += 1;
    while (queue.length >= parallel) await settleOldest();
    const done = verifyAndDelete(db, ref, generation, claim, false).then((deleted) => (deleted ? claim.rowCount : null));
    done.catch(() => undefined); // awaited, in order, by settleOldest
    queue.push(prepared.chunk.lastId, done);
  }
}

/** The `archive_chunks` row of an encoded chunk, not yet marked verified. */
function chunkRow(key: ChunkKey, seq: number, chunk: EncodedChunk) {
  return {
    ...key,
    seq,
    first_id: chunk.firstId,
    last_id: chunk.lastId,
    row_count: chunk.rowCount,
    checksum: chunk.checksum,
    codec: CHUNK_CODEC,
    payload: chunk.payload,
  };
}

/**
 * Stores a chunk already marked verified and checks that the chunk as the database stored it
 * decompresses to the bytes of the rows it was made from. Inside a transaction, nothing commits unless
 * the check holds.
 */
export async function storeVerifiedChunk(q: Knex | Knex.Transaction, key: ChunkKey, seq: number, chunk: EncodedChunk): Promise<void> {
  await q('archive_chunks').insert({ ...chunkRow(key, seq, chunk), verified_at: q.raw('CURRENT_TIMESTAMP(3)') });
  const stored = await q('archive_chunks').where({ ...key, seq }).first<{ payload: Buffer }>('payload');
  if (!stored) throw new ArchiveConflictError(`chunk ${seq} of ${key.message_kind}:${key.message_id} vanished before it committed`);
  await verifyPayload(stored.payload, chunk.checksum);
}

/** The ids of the message's next `limit` hot rows after `after`, in id order, read from its own index alone. */
export async function nextChunkIds(q: Knex | Knex.Transaction, ref: MessageRef, after: string, limit: number): Promise<string[]> {
  return (await q
    .from(q.raw('interactions FORCE INDEX (ix_interactions_message)'))
    .where(MESSAGE(ref))
    .andWhere('id', '>', after)
    .orderBy('id')
    .limit(limit)
    .pluck('id')) as string[];
}

/** The next chunk's rows after `after`, read as arrays and compressed, with their ids; null when there are none. */
async function prepareChunk(db: Db, ref: MessageRef, after: string, chunkRows: number): Promise<{ chunk: EncodedChunk; ids: string[] } | null> {
  const rows = (await db('interactions')
    .select(INTERACTION_COLUMNS)
    .where(MESSAGE(ref))
    .andWhere('id', '>', after)
    .orderBy('id')
    .limit(chunkRows)
    .options({ rowsAsArray: true })) as RowArray[];
  if (rows.length === 0) return null;
  return { chunk: await encodeRowArrays(rows), ids: rows.map((r) => r[0] as string) };
}

async function lastSeq(db: Db, ref: MessageRef, generation: number): Promise<number> {
  const row = await db('archive_chunks').where({ ...MESSAGE(ref), generation }).max<{ m: number | null }>('seq as m').first();
  return Number(row?.m ?? 0);
}

/**
 * Re-reads the committed chunk and checks it decompresses to exactly the bytes its checksum names.
 * Then, in one transaction, locks the chunk's rows in the hot store by their ids and requires them to
 * be byte for byte the chunk's rows (same ids, same message, same values): only then are they deleted,
 * by those ids with the count checked, and the chunk marked verified. If the hot rows differ (changed
 * under us), the unverified chunk is dropped instead: the hot store still holds the truth and the next
 * pass re-reads it. Returns whether the rows were moved.
 */
async function verifyAndDelete(db: Db, ref: MessageRef, generation: number, claim: ChunkClaim, useReturning?: boolean): Promise<boolean> {
  const key = { ...MESSAGE(ref), generation, seq: claim.seq };
  const chunk = await db('archive_chunks').where(key).first<{ payload: Buffer; checksum: string; verified_at: string | null } | undefined>(
    'payload',
    'checksum',
    'verified_at',
  );
  // Gone: a concurrent attempt found the hot rows changed and dropped it, so they are still hot.
  if (!chunk) return false;
  if (chunk.verified_at) return true;
  if (chunk.checksum !== claim.checksum) throw new ArchiveConflictError(`chunk ${claim.seq} of ${ref.kind}:${ref.id} was replaced while being archived`);
  await verifyPayload(chunk.payload, chunk.checksum);

  // Primary-key lookups only, under READ COMMITTED: the transaction locks exactly the chunk's rows (no
  // index ranges, gaps or other messages' rows), so chunks are deleted side by side without waiting
  // for, or deadlocking with, one another or the writers of other messages.
  const returning = useReturning ?? (await supportsReturning(db));
  try {
    return await retryOnDeadlock(() =>
      db.transaction(async (trx) => (returning ? deleteReturning(trx, claim) : lockCompareDelete(trx, claim)), { isolationLevel: 'read committed' }),
    );
  } catch (err) {
    if (!(err instanceof HotRowsChanged)) throw err;
    await db('archive_chunks').where(key).whereNull('verified_at').delete();
    return false;
  }

  async function markVerified(trx: Knex.Transaction): Promise<boolean> {
    await trx('archive_chunks').where(key).update({ verified_at: trx.raw('CURRENT_TIMESTAMP(3)') });
    return true;
  }

  /**
   * MariaDB: one statement deletes the rows and returns them as they were, locked. They are compared
   * with the chunk before anything commits; on a difference the transaction rolls back and every row
   * is hot again. No other transaction ever sees them gone unless the comparison held. This saves
   * reading every row a second time, about a fifth of the database's work in a move.
   */
  async function deleteReturning(trx: Knex.Transaction, c: ChunkClaim): Promise<boolean> {
    const [rows] = (await trx
      .raw(`DELETE FROM interactions WHERE id IN (${c.ids.map(() => '?').join(', ')}) RETURNING ${INTERACTION_COLUMN_LIST}`, c.ids)
      .options({ rowsAsArray: true })) as unknown as [RowArray[]];
    const gone = [...rows].sort((x, y) => compareIds(x[0] as string, y[0] as string));
    if (gone.length !== c.rowCount || checksumOfRowArrays(gone) !== c.checksum) throw new HotRowsChanged();
    return markVerified(trx);
  }

  /** MySQL (no DELETE ... RETURNING): lock the rows, compare them with the chunk, then delete them. */
  async function lockCompareDelete(trx: Knex.Transaction, c: ChunkClaim): Promise<boolean> {
    const hot = (await trx
      .from(trx.raw('interactions FORCE INDEX (PRIMARY)'))
      .select(INTERACTION_COLUMNS)
      .whereIn('id', c.ids)
      .orderBy('id')
      .forUpdate()
      .options({ rowsAsArray: true })) as RowArray[];
    if (hot.length !== c.rowCount || checksumOfRowArrays(hot) !== c.checksum) throw new HotRowsChanged();
    // The multi-table form is the one that takes an index hint in MySQL; without it a small table may
    // be scanned whole, locking (and deadlocking on) rows of the chunk next door.
    const [result] = (await trx.raw(`DELETE i FROM interactions AS i FORCE INDEX (PRIMARY) WHERE i.id IN (${c.ids.map(() => '?').join(', ')})`, c.ids)) as [
      { affectedRows: number },
    ];
    // The rows are locked, so this cannot differ; if it ever did, the rollback keeps every row hot.
    if (result.affectedRows !== c.rowCount) throw new ArchiveConflictError(`deleted ${result.affectedRows} of ${c.rowCount} rows of chunk ${c.seq}`);
    return markVerified(trx);
  }
}

/** Thrown inside the delete transaction to roll it back: the hot rows are no longer the chunk's rows. */
class HotRowsChanged extends Error {
  override name = 'HotRowsChanged';
}

export async function finalizeManifest(db: Db, ref: MessageRef, generation: number): Promise<ArchiveManifest> {
  const key = { ...MESSAGE(ref), generation };
  const chunks = (await db('archive_chunks')
    .where(key)
    .whereNotNull('verified_at')
    .orderBy('seq')
    .select('checksum', 'row_count', db.raw('LENGTH(payload) AS bytes'))) as { checksum: string; row_count: number; bytes: number }[];
  const manifest: ArchiveManifest = {
    kind: ref.kind,
    id: ref.id,
    generation,
    rowCount: chunks.reduce((n, c) => n + Number(c.row_count), 0),
    chunkCount: chunks.length,
    compressedBytes: chunks.reduce((n, c) => n + Number(c.bytes), 0),
    checksum: manifestChecksum(chunks.map((c) => c.checksum)),
  };
  await db('archive_manifests').where(key).update({
    status: 'archived',
    row_count: manifest.rowCount,
    chunk_count: manifest.chunkCount,
    compressed_bytes: manifest.compressedBytes,
    checksum: manifest.checksum,
    archived_at: db.raw('CURRENT_TIMESTAMP(3)'),
  });
  return manifest;
}
