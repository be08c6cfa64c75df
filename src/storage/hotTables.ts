/**
 * A message's hot interaction rows live in a table of their own, `interactions_<n>`, made like the
 * empty template table `interactions` (migration 006), or, while the message is small, in a segment of
 * a shared table. `hot_tables` names them, one entry each:
 *
 * - `current`: the one table (or segment) ingestion writes and readers read, at most one per message;
 * - `pending`: a table of its own being made, not yet current (the message's first, or its next one);
 * - `draining`: taken out of service by the archive, read into long-term storage and then dropped (a
 *   segment: its rows deleted);
 * - `shared`: one of the two shared tables themselves, owned by no message.
 *
 * Why tables of their own: archiving a large message reads one table in primary-key order and drops it,
 * instead of deleting its rows one by one out of a table shared with every other message, with every
 * secondary index entry removed and purged: deleting kept the archive near pt-archiver's speed,
 * draining and dropping the table leaves it well ahead (docs/BENCHMARKS.md, `bench:archive`).
 *
 * Why segments: a table costs InnoDB the same files, dictionary entries and DDL whatever it holds, far
 * more than a small message's rows are worth (`bench:hot-tables`). Below HOT_TABLE_OWN_FROM_ROWS rows a
 * message's rows stay in a shared table whose primary key is (message_kind, message_id, id), so they
 * are still one range of the clustered index; past it, the message moves once to a table of its own
 * (src/storage/hotTablePromotion.ts). A segment's entry has a number of its own (`table_no`) and
 * names the shared table in `shared_in`; every statement on a segment names its message.
 *
 * There are two shared tables, and a message never has two entries in the same one: rows arriving
 * while its segment drains go to the other, so a segment's rows are exactly its message's rows in
 * that table, and the archive's delete of a drained segment takes no newer row.
 *
 * Ids stay unique across all tables, as they were in one table: table n hands out ids from
 * n * 2^40 + 1 on (its AUTO_INCREMENT is set when it is made), and rows keep their ids when they move
 * (restored, or moved to a table of their own), so no row ever meets another row's id.
 *
 * Ingestion takes a shared lock on each current entry it writes through; the archive's swap and a
 * segment's move take it exclusively. Once either has committed, no transaction is still writing the
 * table or segment it took out of service, and none ever will.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { connectionPool, type Db } from '../db/knex';
import type { MessageRef } from '../shared/types';
import type { Connection } from 'mysql2';
import { hotTableOwnFromRows, usersExportTimeLimit } from '../config';
import { ER_DUP_ENTRY, ER_LOCK_WAIT_TIMEOUT, sqlErrno } from '../dataplane/sql';
import { retryOnDeadlock } from './deadlock';
import { bringUpToDate } from './hotTableChanges';

/** The empty table every message's table is made like; schema changes go to it and to every `interactions_<n>`. */
export const HOT_TABLE_TEMPLATE = 'interactions';

/** Ids per table: table n's ids start at n * ID_BLOCK + 1. */
export const ID_BLOCK = 2n ** 40n;

export type HotTableRole = 'pending' | 'current' | 'draining' | 'shared';

export interface HotTable {
  /** The table's own number: the shared table's for a segment. */
  tableNo: string;
  name: string;
  /** The registry entry's number (`hot_tables.table_no`): the table's own unless `shared`. */
  entryNo: string;
  /** A segment of a shared table: every statement on it names its message. */
  shared: boolean;
  /**
   * A draining table's first chunk sequence of its drain, so the archive knows which chunks it already
   * stored from it; null for drains begun before migration 016.
   */
  drainFromSeq: number | null;
}

/** The SQL name of table number `tableNo`; anything but a plain positive integer is refused, as it ends up in SQL text. */
export function hotTableName(tableNo: string | number): string {
  const s = String(tableNo);
  if (!/^[1-9][0-9]{0,6}$/.test(s)) throw new Error(`not a hot table number: ${JSON.stringify(s)}`);
  return `interactions_${s}`;
}

const table = (tableNo: string | number): HotTable => ({
  tableNo: String(tableNo),
  name: hotTableName(tableNo),
  entryNo: String(tableNo),
  shared: false,
  drainFromSeq: null,
});

interface EntryRow {
  table_no: string | number;
  shared_in: string | number | null;
  drain_from_seq: string | number | null;
}

const ENTRY_COLUMNS = ['table_no', 'shared_in', 'drain_from_seq'] as const;

function fromEntry(r: EntryRow): HotTable {
  const physical = r.shared_in ?? r.table_no;
  return {
    tableNo: String(physical),
    name: hotTableName(physical),
    entryNo: String(r.table_no),
    shared: r.shared_in !== null,
    drainFromSeq: r.drain_from_seq === null ? null : Number(r.drain_from_seq),
  };
}

/** The first id table `tableNo` hands out. */
export function firstIdOf(tableNo: string | number): string {
  return (BigInt(tableNo) * ID_BLOCK + 1n).toString();
}

type Q = Knex | Knex.Transaction;

/** The message's entry in `role`, locked for update until the transaction ends when asked. */
export async function findRole(q: Q, ref: MessageRef, role: HotTableRole, lock?: 'update'): Promise<HotTable | null> {
  let query = q('hot_tables')
    .where({ message_kind: ref.kind, message_id: ref.id, role })
    .first<EntryRow | undefined>(...ENTRY_COLUMNS);
  if (lock === 'update') query = query.forUpdate();
  const row = await query;
  return row ? fromEntry(row) : null;
}

/** The message's current table, or null when it never had one (no interaction was ever stored for it). */
export async function currentHotTable(q: Q, ref: MessageRef): Promise<HotTable | null> {
  return findRole(q, ref, 'current');
}

/** The current tables of several messages, keyed by the ref as given (ids are exact: `CS1` is not `cs1`). */
export async function currentHotTables(q: Q, refs: readonly MessageRef[]): Promise<Map<MessageRef, HotTable>> {
  return findCurrent(rawQuery(q), refs, '');
}

/** A statement runner with positional parameters: a knex query's or an ingestion session's. */
export type RawQuery = <T>(sql: string, values: readonly string[]) => Promise<T>;

const rawQuery =
  (q: Q): RawQuery =>
  async <T>(sql: string, values: readonly string[]) =>
    ((await q.raw(sql, [...values])) as unknown as [T])[0];

interface CurrentRow extends EntryRow {
  message_kind: string;
  message_id: string;
}

/**
 * One statement for all the refs, each a range of the registry's unique key. Message ids compare byte
 * for byte (utf8mb4_bin, migration 007), so each row found is the one ref with exactly its spelling.
 * Plain comparisons of columns with parameters keep this the same on MySQL and MariaDB.
 */
async function findCurrent(
  query: RawQuery,
  refs: readonly MessageRef[],
  lock: '' | ' LOCK IN SHARE MODE',
): Promise<Map<MessageRef, HotTable>> {
  const out = new Map<MessageRef, HotTable>();
  if (refs.length === 0) return out;
  const wanted = refs.map(() => "(message_kind = ? AND message_id = ? AND role = 'current')").join(' OR ');
  const rows = await query<CurrentRow[]>(
    `SELECT ${ENTRY_COLUMNS.join(', ')}, message_kind, message_id FROM hot_tables WHERE ${wanted}${lock}`,
    refs.flatMap((r) => [r.kind, r.id]),
  );
  const exact = new Map(rows.map((r) => [`${r.message_kind}\u0000${r.message_id}`, r]));
  for (const ref of refs) {
    const row = exact.get(`${ref.kind}\u0000${ref.id}`);
    if (row !== undefined) out.set(ref, fromEntry(row));
  }
  return out;
}

/**
 * Makes the message's pending table if it has none: the registry row first (which hands out the
 * number), then the table, in one DDL statement so that it never exists without its id range. Both
 * steps are idempotent, so an attempt cut short anywhere is finished by the next one.
 */
export async function preparePending(db: Db, ref: MessageRef): Promise<HotTable | null> {
  await db('hot_tables')
    .insert({ message_kind: ref.kind, message_id: ref.id, role: 'pending' })
    .onConflict(['message_kind', 'message_id', 'role'])
    .ignore();
  // Null when another caller made the same pending table current in between.
  const pending = await findRole(db, ref, 'pending');
  if (pending) await createLikeTemplate(db, pending);
  return pending;
}

const TEMPLATE_KEY = 'PRIMARY KEY (`id`)';
/** A shared table's rows are clustered by message; the unique key on `id` keeps ids unique and numbered by AUTO_INCREMENT. */
const SHARED_KEYS = 'PRIMARY KEY (`message_kind`,`message_id`,`id`),\n  UNIQUE KEY `ux_interactions_id` (`id`)';

/**
 * `CREATE TABLE … LIKE` takes no table options, so the template's own definition is used, with this
 * table's id range, and for a shared table its keys.
 */
async function createLikeTemplate(db: Db, t: HotTable, layout: 'own' | 'shared' = 'own'): Promise<void> {
  const [rows] = (await db.raw('SHOW CREATE TABLE ??', [HOT_TABLE_TEMPLATE])) as [Record<string, string>[]];
  const ddl = rows[0]['Create Table'];
  const head = `CREATE TABLE \`${HOT_TABLE_TEMPLATE}\``;
  if (!ddl.startsWith(head)) throw new Error(`unexpected definition of ${HOT_TABLE_TEMPLATE}: ${ddl.slice(0, 80)}`);
  let body = ddl.slice(head.length).replace(/ AUTO_INCREMENT=\d+/, '');
  if (layout === 'shared') {
    if (!body.includes(TEMPLATE_KEY)) throw new Error(`the primary key of ${HOT_TABLE_TEMPLATE} is not ${TEMPLATE_KEY}`);
    body = body.replace(TEMPLATE_KEY, SHARED_KEYS);
  }
  await db.raw(`CREATE TABLE IF NOT EXISTS \`${t.name}\`${body} AUTO_INCREMENT=${firstIdOf(t.tableNo)}`);
  // The template may have changed since its definition was read (src/storage/hotTableSchema.ts).
  await bringUpToDate(db, t.name);
}

/** Names the two shared tables' entries; no message kind is empty. */
const SHARED_ENTRY_KIND = '';
const SHARED_ENTRY_IDS = ['shared-1', 'shared-2'] as const;
/**
 * The two shared tables, registered and made if they are not (on a new database, the first time a
 * small message needs one). Asked each time a segment is made, once per message and archive: two
 * short reads, where a process-wide memo would go on naming tables a restored backup lacks.
 */
export async function sharedHotTables(db: Db): Promise<HotTable[]> {
  const rows = await db('hot_tables')
    .where({ message_kind: SHARED_ENTRY_KIND, role: 'shared' })
    .whereIn('message_id', SHARED_ENTRY_IDS)
    .orderBy('message_id')
    .select<{ table_no: string | number }[]>('table_no');
  if (rows.length === SHARED_ENTRY_IDS.length) {
    const tables = rows.map((r) => table(r.table_no));
    const [found] = (await db.raw(
      `SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (${tables.map(() => '?').join(', ')})`,
      tables.map((t) => t.name),
    )) as [{ n: number | string }[]];
    if (Number(found[0].n) === tables.length) return tables;
  }
  return makeSharedTables(db);
}

/** Idempotent: concurrent callers end up with the same two tables. */
async function makeSharedTables(db: Db): Promise<HotTable[]> {
  const out: HotTable[] = [];
  for (const id of SHARED_ENTRY_IDS) {
    const entry = { message_kind: SHARED_ENTRY_KIND, message_id: id, role: 'shared' };
    await db('hot_tables').insert(entry).onConflict(['message_kind', 'message_id', 'role']).ignore();
    const row = await db('hot_tables').where(entry).first<{ table_no: string | number }>('table_no');
    const t = table(row.table_no);
    await createLikeTemplate(db, t, 'shared');
    out.push(t);
  }
  return out;
}

export interface EnsureHotTableOptions {
  /** Rows about to be written (a restore's): from HOT_TABLE_OWN_FROM_ROWS on, a table of its own. */
  rows?: number;
  /** By default HOT_TABLE_OWN_FROM_ROWS; 0 gives every message a table of its own. */
  ownFromRows?: number;
}

/**
 * The message's current table or segment, made (and registered) first if the message has none: a
 * segment of a shared table, or a table of its own for a message about to hold many rows or when
 * sharing is off. Concurrent callers for one message end up with the same one.
 */
export async function ensureHotTable(db: Db, ref: MessageRef, opts: EnsureHotTableOptions = {}): Promise<HotTable> {
  const ownFrom = opts.ownFromRows ?? hotTableOwnFromRows();
  const segment = ownFrom > 0 && (opts.rows ?? 0) < ownFrom;
  // Short statements of their own, no locking reads: with ingestion batches writing beside them, a
  // locked gap in the registry's key would have them wait for one another, or deadlock.
  for (let attempt = 1; ; attempt++) {
    const existing = await currentHotTable(db, ref);
    if (existing) return existing;
    if (segment) {
      const shared = await sharedHotTables(db);
      await underSegmentLock(db, ref, (conn) =>
        retryOnDeadlock(() =>
          db.transaction(
            async (trx) => {
              // Read again under the lock, which beginDrain holds while it takes a segment out of service:
              // a segment made and drained since the look above is seen here.
              if (await currentHotTable(trx, ref)) return;
              // Not the shared table its draining segment is in: that one's rows are deleted once drained.
              const draining = await findRole(trx, ref, 'draining');
              const into = shared.find((t) => t.tableNo !== draining?.tableNo) ?? shared[0];
              await trx('hot_tables')
                .insert({ message_kind: ref.kind, message_id: ref.id, role: 'current', shared_in: into.tableNo })
                .onConflict(['message_kind', 'message_id', 'role'])
                .ignore();
            },
            { connection: conn },
          ),
        ),
      );
      if (attempt >= 5) throw new Error(`${ref.kind}:${ref.id} has no current hot table after ${attempt} attempts to make one`);
      continue;
    }
    const pending = await retryOnDeadlock(() => preparePending(db, ref));
    if (pending) {
      try {
        await retryOnDeadlock(() => db('hot_tables').where({ table_no: pending.entryNo, role: 'pending' }).update({ role: 'current' }));
      } catch (err) {
        // The key allows one current table per message: another caller's is already there, and this
        // one stays pending, for the message's next table after an archive.
        if (sqlErrno(err) !== ER_DUP_ENTRY) throw err;
      }
    }
    if (attempt >= 5) throw new Error(`${ref.kind}:${ref.id} has no current hot table after ${attempt} attempts to make one`);
  }
}

/**
 * Inside a writer's transaction: the current tables of these messages, each locked in share mode until
 * the transaction ends, so that the archive cannot take a table out of service while rows are being
 * written into it. A message without a current table is missing from the answer.
 */
export async function lockCurrentTables(query: RawQuery, refs: readonly MessageRef[]): Promise<Map<MessageRef, HotTable>> {
  // A locking read that finds no row locks the gap where it would go, and so blocks (or deadlocks with)
  // whoever is about to make that table. Whether every table is there is asked without locking first.
  const seen = await findCurrent(query, refs, '');
  if (seen.size < refs.length) return seen;
  return findCurrent(query, refs, ' LOCK IN SHARE MODE');
}

/**
 * The table the archive drains: the one an interrupted archive left draining, or else the current one,
 * taken out of service in one short transaction. Null when the message has no table. The message is
 * then left without a current table: the next event to arrive, or a restore, makes one, so a message
 * that is archived and stays quiet keeps no table at all.
 *
 * With `generation`, the entry records the sequence its drain's first chunk of that generation will
 * have (the generation's chunks are written only by the attempt holding the fence, after `guard`).
 */
export async function beginDrain(
  db: Db,
  ref: MessageRef,
  guard?: (trx: Knex.Transaction) => Promise<void>,
  generation?: number,
): Promise<HotTable | null> {
  const draining = await findRole(db, ref, 'draining');
  if (draining) return draining;
  // Asked without a lock first: a locking read that finds no row locks the gap where ingestion's first
  // table for the message would go.
  if (!(await currentHotTable(db, ref))) return null;
  // Under the message's segment lock until committed: a segment being made for the message meanwhile
  // then sees this one draining and goes to the other shared table (ensureHotTable).
  return underSegmentLock(db, ref, (conn) =>
    retryOnDeadlock(() =>
      db.transaction(
        async (trx) => {
          // The caller's fence (src/storage/fence.ts), held until this commits: a stale archive attempt must
          // not take a table out of service, which may by now hold a restore's rows.
          await guard?.(trx);
          // Waits for every ingestion transaction still writing the current table to commit.
          const locked = await findRole(trx, ref, 'current', 'update');
          if (!locked) return null;
          let drainFromSeq: number | null = null;
          if (generation !== undefined) {
            const last = await trx('archive_chunks')
              .where({ message_kind: ref.kind, message_id: ref.id, generation })
              .max<{ m: number | string | null }>('seq as m')
              .first();
            drainFromSeq = Number(last?.m ?? 0) + 1;
          }
          await trx('hot_tables').where({ table_no: locked.entryNo }).update({ role: 'draining', drain_from_seq: drainFromSeq });
          return { ...locked, drainFromSeq };
        },
        { connection: conn },
      ),
    ),
  );
}

/** How long making a segment, or taking one out of service, waits for the other. */
const SEGMENT_LOCK_WAIT_SECONDS = 30;

/** The named lock serializing, per message, the making of a segment and taking a current entry out of service. */
export function segmentLockName(ref: MessageRef): string {
  return `interaction-data:segment:${createHash('sha256').update(`${ref.kind}\u0000${ref.id}`).digest('hex').slice(0, 40)}`;
}

/**
 * Runs `fn` holding the message's segment lock, on the lock's own connection (so that a pool of one
 * connection is enough): a MySQL named lock, which no row lock can deadlock with, and which ends with
 * its session if the process dies.
 */
async function underSegmentLock<T>(db: Db, ref: MessageRef, fn: (conn: Connection) => Promise<T>): Promise<T> {
  const conn = await connectionPool(db).acquireConnection();
  const on = (sql: string, values: readonly (string | number)[]) => db.raw(sql, [...values]).connection(conn);
  const name = segmentLockName(ref);
  try {
    const [[row]] = (await on('SELECT GET_LOCK(?, ?) AS got', [name, SEGMENT_LOCK_WAIT_SECONDS])) as [{ got: number | string | null }[]];
    if (Number(row.got) !== 1) throw new Error(`the segment lock of ${ref.kind}:${ref.id} stayed taken for ${SEGMENT_LOCK_WAIT_SECONDS} s`);
    try {
      return await fn(conn);
    } finally {
      // A session that cannot release it is ended, which does; the pool drops the connection.
      await on('SELECT RELEASE_LOCK(?)', [name]).catch(() => conn.destroy());
    }
  } finally {
    await connectionPool(db).releaseConnection(conn);
  }
}

/**
 * A drained table's DROP that did not get the table's metadata lock in time: a reader (a users export)
 * still had it open. Nothing changed; the archive's next attempt resumes from the draining table.
 */
export class HotTableDropTimeoutError extends Error {
  override name = 'HotTableDropTimeoutError';
}

/** Past the export limit: an export cut off at its limit still has its session to end. */
const DROP_WAIT_MARGIN_MS = 15_000;

/**
 * Below the 5 minutes the archive activity's heartbeat timer keeps an attempt alive without progress
 * (STALL_LIMIT_MS, activities/heartbeat.ts): a DROP that gives up first fails its attempt, which then
 * is retried, instead of being timed out by Temporal while it still waits beside the next attempt.
 */
const DROP_WAIT_CAP_MS = 4 * 60_000;

/** How long the archive's DROP waits for readers of the table, given how long a users export may run. */
export function archiveDropLockWaitMs(exportTimeLimitMs: number): number {
  return Math.min(exportTimeLimitMs + DROP_WAIT_MARGIN_MS, DROP_WAIT_CAP_MS);
}

export interface EndDrainOptions {
  /** How long the DROP may wait for the table's metadata lock; by default from `USERS_EXPORT_TIME_LIMIT`. */
  lockWaitMs?: number;
  /**
   * Run on the DROP's connection just before it (src/storage/fence.ts): may refuse the DROP by
   * throwing, or hold a session lock until the function it returns is called, once the DROP is done.
   */
  guard?: (on: (sql: string, values?: readonly (string | number)[]) => Promise<unknown>, conn: Connection) => Promise<() => Promise<void>>;
}

/**
 * Drops a drained table (a drained segment: deletes its rows, in one statement) and forgets it; safe
 * to run again after a crash between the two, or after a DROP that timed out (HotTableDropTimeoutError).
 */
export async function endDrain(db: Db, ref: MessageRef, t: HotTable, opts: EndDrainOptions = {}): Promise<void> {
  await dropWithin(db, ref, t, opts.lockWaitMs ?? archiveDropLockWaitMs(usersExportTimeLimit().milliseconds), opts.guard);
  await db('hot_tables').where({ table_no: t.entryNo, role: 'draining' }).delete();
}

/**
 * A DROP waits for every transaction that has read the table to end, by default for a year (MySQL) or a
 * day (MariaDB), holding its connection all that time. It gets a session `lock_wait_timeout` of its own
 * (the one setting MySQL and MariaDB both apply to metadata locks), put back before the connection
 * returns to the pool, so no other statement inherits it.
 */
async function dropWithin(db: Db, ref: MessageRef, t: HotTable, lockWaitMs: number, guard?: EndDrainOptions['guard']): Promise<void> {
  const seconds = Math.max(1, Math.ceil(lockWaitMs / 1000));
  const conn = await connectionPool(db).acquireConnection();
  const on = (sql: string, values: readonly (string | number)[] = []) => db.raw(sql, [...values]).connection(conn);
  let previous: string | number | null = null;
  try {
    const [[row]] = (await on('SELECT @@SESSION.lock_wait_timeout AS s')) as [{ s: string | number }[]];
    previous = row.s;
    await on('SET SESSION lock_wait_timeout = ?', [seconds]);
    const release = await guard?.(on, conn);
    try {
      if (t.shared) await deleteSegment(on, ref, t);
      else await on(`DROP TABLE IF EXISTS \`${t.name}\``);
    } catch (err) {
      if (sqlErrno(err) !== ER_LOCK_WAIT_TIMEOUT) throw err;
      throw new HotTableDropTimeoutError(
        `DROP TABLE ${t.name} waited ${seconds} s for readers of the table (a users export still open?) and gave up; the archive is retried`,
      );
    } finally {
      await release?.();
    }
  } finally {
    if (previous !== null) {
      // A connection whose setting cannot be put back must not go back to the pool: the pool drops destroyed ones.
      await on('SET SESSION lock_wait_timeout = ?', [previous]).catch(() => conn.destroy());
    }
    await connectionPool(db).releaseConnection(conn);
  }
}

/**
 * A drained segment's rows, in one statement (all or none of them, so a retry after a crash finds the
 * segment whole or gone). READ COMMITTED (for this statement's transaction only) locks the rows it
 * deletes and no gaps, so ingestion's inserts of other messages beside the range do not wait for it;
 * a deadlock with them is retried.
 */
async function deleteSegment(
  on: (sql: string, values?: readonly (string | number)[]) => Promise<unknown>,
  ref: MessageRef,
  t: HotTable,
): Promise<void> {
  await retryOnDeadlock(async () => {
    await on('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await on(`DELETE FROM \`${t.name}\` WHERE message_kind = ? AND message_id = ?`, [ref.kind, ref.id]);
  });
}

/** Whether the table exists (a draining table whose DROP ran before its registry row was removed does not). */
export async function hotTableExists(db: Db, t: Pick<HotTable, 'name'>): Promise<boolean> {
  const [rows] = (await db.raw('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', [
    t.name,
  ])) as [{ n: number | string }[]];
  return Number(rows[0].n) > 0;
}

/** Every table holding hot rows of the message: its current one and, while an archive runs, the one it drains. */
export async function messageHotTables(q: Q, ref: MessageRef): Promise<HotTable[]> {
  const rows = await q('hot_tables')
    .where({ message_kind: ref.kind, message_id: ref.id })
    .whereIn('role', ['current', 'draining'])
    .orderBy('table_no')
    .select<EntryRow[]>(...ENTRY_COLUMNS);
  return rows.map(fromEntry);
}
