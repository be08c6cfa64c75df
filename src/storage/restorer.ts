/**
 * Brings one archived generation back into the hot store.
 *
 * Per chunk, in sequence order: read it from its archive store (src/archive/store.ts), decode it and
 * check its rows against the catalog's checksum, insert its rows
 * with their original ids (a row already there from an interrupted attempt is kept, never doubled), and
 * require the rows as the hot store now holds them to be the chunk's, value for value. On MariaDB each
 * INSERT statement's own RETURNING answer is compared with the rows it sent as soon as it arrives;
 * elsewhere the chunk's ids are read again and must have the chunk's checksum. Only when every chunk
 * has been verified and the totals match the manifest is the manifest marked restored and the
 * long-term copies dropped.
 *
 * The database's inserts are most of a restore's work, and one statement keeps one core busy: each
 * chunk's statements are spread over `insertConnections` connections (RESTORE_INSERT_CONNECTIONS, 2
 * by default), while the chunk is decoded once, so the restore gets faster without the worker holding
 * more rows (docs/BENCHMARKS.md, `bench:archive`). Chunks in flight,
 * `parallelInserts` (RESTORE_PARALLEL_CHUNKS, 1 by default), overlap the worker's decoding with the
 * inserts too, at a few megabytes of decoded rows and a larger heap per chunk.
 *
 * Each attempt claims the message's fence (src/storage/fence.ts) for its generation first; every INSERT
 * statement, the manifest marked restoring and restored, and each delete of the long-term copy check
 * in their own transaction that it still holds it. An attempt Temporal gave up on, resumed after a
 * newer attempt or the next generation's archive, stops with StaleAttemptError having changed nothing.
 */
import type { Knex } from 'knex';
import type { Connection } from 'mysql2';
import { connectionPool, type Db } from '../db/knex';
import type { MessageRef, RestoreSummary } from '../shared/types';
import { mysqlOnly } from '../archive/mysqlStore';
import type { ArchiveStores, ChunkRecord } from '../archive/store';
import {
  canonicalValue,
  checksumOfColumns,
  checksumOfRowArrays,
  ChunkIntegrityError,
  compareIds,
  INTERACTION_COLUMN_LIST,
  INTERACTION_COLUMNS,
  manifestChecksum,
  type RowArray,
} from './chunkCodec';
import { retryOnDeadlock } from './deadlock';
import {
  assertFenceHeld,
  checkFence,
  heldFromArray,
  randomAttemptToken,
  requireHeld,
  runFenced,
  SELECT_FENCE_SHARED,
  type MoveAttempt,
} from './fence';
import { ensureHotTable, messageHotTables } from './hotTables';
import { promoteSegment } from './hotTablePromotion';
import { hotTableOwnFromRows } from '../config';
import { deleteErasedHotRows, unfinishedErasuresOf } from '../privacy/erasureRecords';
import { supportsReturning } from './returning';

export interface RestoreCursor {
  /** Last chunk seq rehydrated and verified. */
  seq: number;
}

export interface RestoreOptions {
  resumeFrom?: RestoreCursor;
  /** Called after every chunk; the activity heartbeats the cursor from here. Awaited when it returns a promise. */
  /** After each chunk: the cursor, the rows restored so far (a resumed attempt's included), and the chunk's own rows. */
  onProgress?: (cursor: RestoreCursor, restoredRows: number, chunkRows: number) => void | Promise<void>;
  /** Rows per INSERT statement. */
  insertBatch?: number;
  /**
   * Chunks inserted at the same time, each on its own connection (default 1). More helps when the
   * database has idle cores; each chunk in flight costs the worker a few megabytes.
   */
  parallelInserts?: number;
  /** Connections each chunk's INSERT statements are spread over (default 2). */
  insertConnections?: number;
  /**
   * How the restored rows are checked: from what MariaDB's INSERT ... RETURNING answers (the rows as
   * stored, including any an interrupted attempt had put back), or by reading them again (MySQL).
   * Detected from the server when not given.
   */
  insertReturning?: boolean;
  /**
   * The attempt's token (activities derive it from Temporal's attempt: fence.ts activityAttemptToken).
   * Without one the call claims with a fresh token, taking over from any attempt of the same generation.
   */
  fence?: { token: string };
  /** The stores the generation's chunks may be in; MySQL alone when not given. */
  stores?: ArchiveStores;
}

interface ManifestRow {
  status: string;
  row_count: string | number;
  chunk_count: number;
  checksum: string | null;
  user_messages_kept: number | boolean;
}

interface ChunkMeta extends ChunkRecord {
  verified_at: string | null;
}

const CHUNK_META_COLUMNS = ['seq', 'checksum', 'row_count', 'store', 'object_key', 'verified_at'] as const;

/** A verified chunk decoded into its columns (in INTERACTION_COLUMNS order), ready to insert. */
interface DecodedChunk {
  seq: number;
  checksum: string;
  columns: (string | null)[][];
  rowCount: number;
}

/** Rows per INSERT statement (at most MAX_ROWS_PER_STATEMENT). */
const DEFAULT_INSERT_BATCH = 1_000;
const DEFAULT_PARALLEL_INSERTS = 1;
const DEFAULT_INSERT_CONNECTIONS = 2;

export async function restoreMessage(db: Db, ref: MessageRef, generation: number, opts: RestoreOptions = {}): Promise<RestoreSummary> {
  const attempt: MoveAttempt = { generation, phase: 'restore', token: opts.fence?.token ?? randomAttemptToken() };
  return runFenced(db, ref, attempt, () => restoreClaimed(db, ref, attempt, opts));
}

/** Runs `step` in a transaction in which the attempt's fence is checked first and held until it commits. */
function fenced<T>(db: Db, ref: MessageRef, attempt: MoveAttempt, step: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return retryOnDeadlock(() =>
    db.transaction(async (trx) => {
      await assertFenceHeld(trx, ref, attempt);
      return step(trx);
    }),
  );
}

async function restoreClaimed(db: Db, ref: MessageRef, attempt: MoveAttempt, opts: RestoreOptions): Promise<RestoreSummary> {
  const { generation } = attempt;
  const key = { message_kind: ref.kind, message_id: ref.id, generation };
  const stores = opts.stores ?? mysqlOnly();
  const manifest = await db('archive_manifests').where(key).first<ManifestRow | undefined>();
  if (!manifest) return { generation, rowCount: 0, chunkCount: 0 };
  const expectedRows = Number(manifest.row_count);

  if (manifest.status !== 'restored') {
    if (manifest.status === 'archiving') {
      throw new ChunkIntegrityError(`generation ${generation} of ${ref.kind}:${ref.id} is still being archived`);
    }
    await fenced(db, ref, attempt, (trx) => trx('archive_manifests').where(key).update({ status: 'restoring' }));
    const chunks = await db('archive_chunks')
      .where(key)
      .orderBy('seq')
      .select<ChunkMeta[]>(...CHUNK_META_COLUMNS);
    const verified = chunks.filter((c) => c.verified_at !== null);
    const total = verified.reduce((n, c) => n + Number(c.row_count), 0);
    if (
      total !== expectedRows ||
      verified.length !== manifest.chunk_count ||
      manifestChecksum(verified.map((c) => c.checksum)) !== manifest.checksum
    ) {
      throw new ChunkIntegrityError(
        `archive of ${ref.kind}:${ref.id} generation ${generation} does not match its manifest ` +
          `(${verified.length} chunks / ${total} rows stored, manifest says ${manifest.chunk_count} / ${expectedRows})`,
      );
    }
    let restored = 0;
    const todo: ChunkMeta[] = [];
    for (const c of verified) {
      if (opts.resumeFrom && c.seq <= opts.resumeFrom.seq) restored += Number(c.row_count);
      else todo.push(c);
    }
    const insertBatch = opts.insertBatch ?? DEFAULT_INSERT_BATCH;
    const parallel = Math.max(1, opts.parallelInserts ?? DEFAULT_PARALLEL_INSERTS);
    const connections = Math.max(1, opts.insertConnections ?? DEFAULT_INSERT_CONNECTIONS);
    const returning = opts.insertReturning ?? (await supportsReturning(db));
    // Archived before migration 005: its users' pairs were never written to `user_messages`.
    const addUserMessages = !Number(manifest.user_messages_kept);
    // The rows go back into the message's current table; nothing swaps it while the actor restores. A
    // stale attempt getting past this check could at most make the empty table ingestion would make.
    await checkFence(db, ref, attempt);
    // A generation of HOT_TABLE_OWN_FROM_ROWS rows or more goes into a table of its own, even when late
    // events have already given the message a segment: the segment moves first, before any row of this
    // restore is in it (no other move of it happens while the manifest says `restoring`).
    const ownFrom = hotTableOwnFromRows();
    let current = await ensureHotTable(db, ref, { rows: expectedRows, ownFromRows: ownFrom });
    if (current.shared && ownFrom > 0 && expectedRows >= ownFrom) {
      await promoteSegment(db, ref, { duringRestore: true });
      current = await ensureHotTable(db, ref, { rows: expectedRows, ownFromRows: ownFrom });
    }
    const table = current.name;
    // Chunks being inserted and checked, oldest first. The cursor only moves past a chunk once it and
    // every chunk before it are back and verified, so a resume never skips one.
    const inFlight: { seq: number; rows: number; done: Promise<void> }[] = [];
    const settleOldest = async () => {
      const oldest = inFlight.shift();
      if (!oldest) return;
      await oldest.done;
      restored += oldest.rows;
      await opts.onProgress?.({ seq: oldest.seq }, restored, oldest.rows);
    };
    try {
      for (const meta of todo) {
        while (inFlight.length >= parallel) await settleOldest();
        // A chunk is fetched and decoded only when it is its turn: reading the next one ahead saved no
        // time, even on an idle machine, and held a whole decoded chunk more in the worker's memory.
        const done = loadChunk(db, stores, ref, generation, meta).then((chunk) =>
          restoreChunk(db, ref, chunk, { table, insertBatch, connections, returning, addUserMessages, attempt }),
        );
        done.catch(() => undefined); // awaited, in order, by settleOldest
        inFlight.push({ seq: meta.seq, rows: Number(meta.row_count), done });
      }
      while (inFlight.length) await settleOldest();
    } finally {
      // Nothing is left running against the pool when this returns or throws (a failed chunk, a stop
      // between chunks), so the next attempt never meets this one's statements.
      await Promise.allSettled(inFlight.map((c) => c.done));
    }
    await fenced(db, ref, attempt, (trx) =>
      trx('archive_manifests')
        .where(key)
        .update({ status: 'restored', restored_at: trx.raw('CURRENT_TIMESTAMP(3)') }),
    );
  }

  // A user whose erasure failed in this message stays erased: their rows go again before the data is
  // available (src/privacy/erasureRecords.ts unfinishedErasuresOf).
  const unfinished = await unfinishedErasuresOf(db, ref);
  if (unfinished.length > 0) {
    await fenced(db, ref, attempt, async (trx) => {
      for (const t of await messageHotTables(trx, ref)) {
        for (const u of unfinished) await deleteErasedHotRows(trx, t.name, ref, u.userId, u.erasedThrough);
      }
    });
  }

  // The rows are hot and verified again: the long-term copy of this generation has done its job. Each
  // batch's bytes go before their catalog rows, so a crash between the two leaves catalog rows whose
  // bytes are gone, which the next attempt deletes again, never bytes no catalog row names.
  for (;;) {
    const records = await db('archive_chunks')
      .where(key)
      .orderBy('seq')
      .limit(100)
      .select<ChunkMeta[]>(...CHUNK_META_COLUMNS);
    if (records.length === 0) break;
    await checkFence(db, ref, attempt);
    for (const name of new Set(records.map((r) => r.store))) {
      await stores.get(name).removeBodies(
        key,
        records.filter((r) => r.store === name),
      );
    }
    await fenced(db, ref, attempt, (trx) =>
      trx('archive_chunks')
        .where(key)
        .whereIn(
          'seq',
          records.map((r) => r.seq),
        )
        .delete(),
    );
  }
  const store = await db('archive_manifests').where(key).first<{ store: string } | undefined>('store');
  if (store) await stores.get(store.store).forgetGeneration(key);
  return { generation, rowCount: expectedRows, chunkCount: manifest.chunk_count };
}

/** Fetches one chunk from its store, verifies it against its catalog row and turns it into rows of this message. */
async function loadChunk(db: Db, stores: ArchiveStores, ref: MessageRef, generation: number, meta: ChunkMeta): Promise<DecodedChunk> {
  const key = { message_kind: ref.kind, message_id: ref.id, generation };
  const { columns, rowCount } = await stores.get(meta.store).read(db, key, meta);
  const kinds = columns[INTERACTION_COLUMNS.indexOf('message_kind')];
  const ids = columns[INTERACTION_COLUMNS.indexOf('message_id')];
  let respelled = false;
  for (let i = 0; i < rowCount; i++) {
    // Archived before ids were exact (migration 007), when the database took this spelling for the
    // message's own: the row goes back in the message's spelling, as the migration respelled hot rows.
    if (kinds[i] === ref.kind && ids[i] !== ref.id && ids[i]?.toLowerCase() === ref.id.toLowerCase()) {
      ids[i] = ref.id;
      respelled = true;
    }
    if (kinds[i] !== ref.kind || ids[i] !== ref.id) {
      throw new ChunkIntegrityError(`chunk ${meta.seq} holds a row of ${kinds[i]}:${ids[i]}, not of ${ref.kind}:${ref.id}`);
    }
  }
  // The rows as restored then differ from the chunk's bytes by that spelling alone.
  const checksum = respelled ? checksumOfColumns(columns) : meta.checksum;
  return { seq: meta.seq, checksum, columns, rowCount };
}

const ROW_PLACEHOLDERS = `(${INTERACTION_COLUMNS.map(() => '?').join(', ')})`;

/**
 * Rows per INSERT statement at most. The statement's text (values escaped by the driver from bound
 * parameters) is built per batch; batches of a thousand rows keep that text near 300 KB, where five
 * thousand made megabyte strings per chunk and a restoring worker's memory climbed with them.
 * (Prepared statements avoid the text but were worse: the driver keeps a definition object per
 * parameter, 49,152 of them for a 4,096-row statement, on every connection.)
 */
const MAX_ROWS_PER_STATEMENT = 1_000;
const insertSql = new Map<string, string>();
function insertStatement(table: string, rows: number, returning: boolean): string {
  const key = `${table}/${rows}/${returning}`;
  let sql = insertSql.get(key);
  if (!sql) {
    sql =
      `INSERT INTO \`${table}\` (${INTERACTION_COLUMN_LIST}) VALUES ${new Array(rows).fill(ROW_PLACEHOLDERS).join(', ')} ON DUPLICATE KEY UPDATE id = id` +
      (returning ? ` RETURNING ${INTERACTION_COLUMN_LIST}` : '');
    // Two sizes are common (full batches and a chunk's remainder); do not keep every remainder ever seen.
    if (insertSql.size > 16) insertSql.clear();
    insertSql.set(key, sql);
  }
  return sql;
}

function run(conn: Connection, sql: string, values: (string | null)[] = []): Promise<unknown> {
  return new Promise((resolve, reject) =>
    conn.query({ sql, values, rowsAsArray: true }, (err, rows) => (err ? reject(err) : resolve(rows))),
  );
}

/**
 * Inserts a chunk's rows, some of which may already be there from an interrupted attempt. Its
 * statements are spread over `connections` connections, which take the next statement as each
 * finishes: the inserts are the database's heaviest part of a restore and one statement keeps one
 * core busy, while the chunk itself is decoded once, however many connections insert it.
 *
 * With `returning`, each statement's answer (the rows as stored, those an interrupted attempt had
 * already put back included: `id = id` leaves them as they are, and RETURNING shows them so) is
 * compared with the rows it sent and dropped at once. Collecting a chunk's answers for one checksum
 * at the end kept 5,000 rows of strings alive per chunk in flight, long enough for V8 to promote them
 * to the old generation, which then grows well past what is live before V8 collects it.
 */
async function insertRows(
  db: Db,
  table: string,
  chunk: DecodedChunk,
  ref: MessageRef,
  batchRows: number,
  connections: number,
  returning: boolean,
  attempt: MoveAttempt,
): Promise<void> {
  const { columns, rowCount } = chunk;
  const step = Math.max(1, Math.min(batchRows, MAX_ROWS_PER_STATEMENT));
  let next = 0;
  let failed = false;
  const insertUntilDone = async () => {
    const conn = await connectionPool(db).acquireConnection();
    try {
      while (next < rowCount && !failed) {
        const i = next;
        const n = Math.min(step, rowCount - i);
        next += n;
        const values: (string | null)[] = new Array<string | null>(n * columns.length);
        let v = 0;
        for (let r = i; r < i + n; r++) for (const column of columns) values[v++] = column[r];
        // `id = id`: a row restored by an interrupted earlier attempt stays as it is; nothing is doubled.
        // READ COMMITTED (for this statement's own transaction only) keeps the duplicate checks from
        // taking gap locks, which restores running side by side would otherwise deadlock on.
        const answer = await retryOnDeadlock(async () => {
          await run(conn, 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
          await run(conn, 'START TRANSACTION');
          try {
            // The fence, in share mode until the rows are in: a newer attempt's claim waits for this
            // statement, and once it has claimed, this attempt inserts nothing more.
            const [held] = (await run(conn, SELECT_FENCE_SHARED, [ref.kind, ref.id])) as RowArray[];
            requireHeld(ref, attempt, heldFromArray(held));
            const rows = await run(conn, insertStatement(table, n, returning), values);
            await run(conn, 'COMMIT');
            return rows;
          } catch (err) {
            // A lock wait timeout leaves the transaction open: it must not reach the pool that way.
            await run(conn, 'ROLLBACK').catch(() => undefined);
            throw err;
          }
        });
        if (returning) {
          const mismatch = firstMismatch(answer as RowArray[], columns, i, n);
          if (mismatch) {
            failed = true;
            throw new ChunkIntegrityError(
              `restored rows of chunk ${chunk.seq} of ${ref.kind}:${ref.id} differ from the archive (${mismatch})`,
            );
          }
        }
      }
    } finally {
      await connectionPool(db).releaseConnection(conn);
    }
  };
  const statements = Math.ceil(rowCount / step);
  await Promise.all(Array.from({ length: Math.max(1, Math.min(connections, statements)) }, insertUntilDone));
}

/**
 * Compares the rows a statement's RETURNING answered with rows [from, from + count) of the chunk's
 * columns, matched by id: describes the first difference, or returns null when they are the same rows
 * with the same values.
 */
function firstMismatch(answered: readonly RowArray[], columns: readonly (string | null)[][], from: number, count: number): string | null {
  if (answered.length !== count) return `${answered.length} rows stored for ${count} sent`;
  const ids = columns[0];
  const byId = (x: number, y: number) => compareIds(ids[x] as string, ids[y] as string);
  // Both sides are in id order in practice (chunks are read by id, and the answer follows the VALUES
  // list); sorting what is already sorted costs one pass.
  const sent = Array.from({ length: count }, (_, k) => from + k).sort(byId);
  const stored = [...answered].sort((x, y) => compareIds(String(x[0]), String(y[0])));
  for (let k = 0; k < count; k++) {
    const row = stored[k];
    for (let c = 0; c < columns.length; c++) {
      if (canonicalValue(row[c]) !== columns[c][sent[k]]) {
        return `row ${String(row[0])}: ${INTERACTION_COLUMNS[c]} is ${JSON.stringify(canonicalValue(row[c]))}, archived ${JSON.stringify(columns[c][sent[k]])}`;
      }
    }
  }
  return null;
}

interface InsertTuning {
  /** The message's current hot table. */
  table: string;
  insertBatch: number;
  connections: number;
  returning: boolean;
  /** Also record the chunk's users in `user_messages` (a generation archived before migration 005). */
  addUserMessages: boolean;
  /** The attempt, whose fence each INSERT statement checks. */
  attempt: MoveAttempt;
}

async function restoreChunk(db: Db, ref: MessageRef, chunk: DecodedChunk, tuning: InsertTuning): Promise<void> {
  await insertRows(db, tuning.table, chunk, ref, tuning.insertBatch, tuning.connections, tuning.returning, tuning.attempt);
  // Checked, not held: the pairs say this message's users received it, true whichever attempt writes
  // them, and a move never removes them.
  if (tuning.addUserMessages) {
    await checkFence(db, ref, tuning.attempt);
    await addUserMessages(db, ref, chunk);
  }
  if (tuning.returning) return; // each statement's answer has been checked already
  // Without RETURNING, re-read exactly the chunk's ids, by primary key: the message may also have late
  // rows in the hot store, which are not this chunk's business.
  const mine = (await db(tuning.table)
    .select(INTERACTION_COLUMNS)
    .whereIn('id', chunk.columns[0] as string[])
    .orderBy('id')
    .options({ rowsAsArray: true })) as RowArray[];
  const actual = checksumOfRowArrays(mine);
  if (mine.length !== chunk.rowCount || actual !== chunk.checksum) {
    throw new ChunkIntegrityError(
      `restored rows of chunk ${chunk.seq} of ${ref.kind}:${ref.id} differ from the archive (checksum ${actual})`,
    );
  }
}

/**
 * The chunk's users, once each, as users of this message in `user_messages`, so the profile lists
 * find the message again. A pair already there (or written by an interrupted attempt) is left alone.
 */
async function addUserMessages(db: Db, ref: MessageRef, chunk: DecodedChunk): Promise<void> {
  const users = new Set<string>();
  for (const u of chunk.columns[INTERACTION_COLUMNS.indexOf('user_id')]) if (u !== null) users.add(u);
  // Sorted, as ingestion sorts its pairs, so that the two mostly lock shared pairs in one order; a
  // deadlock left (JavaScript sorts UTF-16 code units, the binary collation UTF-8 bytes) is retried.
  const sorted = [...users].sort();
  for (let i = 0; i < sorted.length; i += MAX_ROWS_PER_STATEMENT) {
    const part = sorted.slice(i, i + MAX_ROWS_PER_STATEMENT);
    await retryOnDeadlock(() =>
      db.raw(
        `INSERT INTO user_messages (user_id, message_kind, message_id) VALUES ${part.map(() => '(?, ?, ?)').join(', ')} ON DUPLICATE KEY UPDATE user_id = user_id`,
        part.flatMap((u) => [u, ref.kind, ref.id]),
      ),
    );
  }
}
