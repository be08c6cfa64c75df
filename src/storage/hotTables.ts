/**
 * Each message's hot interaction rows live in a table of their own, `interactions_<n>`, made like the
 * empty template table `interactions` (migration 006). `hot_tables` names them:
 *
 * - `current`: the one table ingestion writes and readers read, at most one per message;
 * - `pending`: being made, not yet current (the message's first table, or its next one after an archive);
 * - `draining`: taken out of service by the archive, read into long-term storage and then dropped.
 *
 * Why: archiving a message then reads one table in primary-key order and drops it, instead of deleting
 * its rows one by one out of a table shared with every other message, with every secondary index
 * entry removed and purged: deleting kept the archive near pt-archiver's speed, draining and dropping
 * the table leaves it well ahead (docs/BENCHMARKS.md, `bench:archive`).
 *
 * Ids stay unique across all tables, as they were in one table: table n hands out ids from
 * n * 2^40 + 1 on (its AUTO_INCREMENT is set when it is made), so a row restored into a later table
 * never meets another row's id, and a message's later tables always hold higher ids than its earlier
 * ones.
 *
 * Ingestion takes a shared lock on each current row it writes through; the archive's swap takes it
 * exclusively. Once the swap has committed, no transaction is still writing the table it took out of
 * service, and none ever will.
 */
import type { Knex } from 'knex';
import { connectionPool, type Db } from '../db/knex';
import type { MessageRef } from '../shared/types';
import type { Connection } from 'mysql2';
import { usersExportTimeLimit } from '../config';
import { ER_DUP_ENTRY, ER_LOCK_WAIT_TIMEOUT, sqlErrno } from '../dataplane/sql';
import { retryOnDeadlock } from './deadlock';
import { bringUpToDate } from './hotTableChanges';

/** The empty table every message's table is made like; schema changes go to it and to every `interactions_<n>`. */
export const HOT_TABLE_TEMPLATE = 'interactions';

/** Ids per table: table n's ids start at n * ID_BLOCK + 1. */
export const ID_BLOCK = 2n ** 40n;

export type HotTableRole = 'pending' | 'current' | 'draining';

export interface HotTable {
  tableNo: string;
  name: string;
}

/** The SQL name of table number `tableNo`; anything but a plain positive integer is refused, as it ends up in SQL text. */
export function hotTableName(tableNo: string | number): string {
  const s = String(tableNo);
  if (!/^[1-9][0-9]{0,6}$/.test(s)) throw new Error(`not a hot table number: ${JSON.stringify(s)}`);
  return `interactions_${s}`;
}

const table = (tableNo: string | number): HotTable => ({ tableNo: String(tableNo), name: hotTableName(tableNo) });

/** The first id table `tableNo` hands out. */
export function firstIdOf(tableNo: string | number): string {
  return (BigInt(tableNo) * ID_BLOCK + 1n).toString();
}

type Q = Knex | Knex.Transaction;

async function findRole(q: Q, ref: MessageRef, role: HotTableRole, lock?: 'update'): Promise<HotTable | null> {
  let query = q('hot_tables')
    .where({ message_kind: ref.kind, message_id: ref.id, role })
    .first<{ table_no: string } | undefined>('table_no');
  if (lock === 'update') query = query.forUpdate();
  const row = await query;
  return row ? table(row.table_no) : null;
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

interface CurrentRow {
  table_no: string;
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
    `SELECT table_no, message_kind, message_id FROM hot_tables WHERE ${wanted}${lock}`,
    refs.flatMap((r) => [r.kind, r.id]),
  );
  const exact = new Map(rows.map((r) => [`${r.message_kind}\u0000${r.message_id}`, r.table_no]));
  for (const ref of refs) {
    const no = exact.get(`${ref.kind}\u0000${ref.id}`);
    if (no !== undefined) out.set(ref, table(no));
  }
  return out;
}

/**
 * Makes the message's pending table if it has none: the registry row first (which hands out the
 * number), then the table, in one DDL statement so that it never exists without its id range. Both
 * steps are idempotent, so an attempt cut short anywhere is finished by the next one.
 */
async function preparePending(db: Db, ref: MessageRef): Promise<HotTable | null> {
  await db('hot_tables')
    .insert({ message_kind: ref.kind, message_id: ref.id, role: 'pending' })
    .onConflict(['message_kind', 'message_id', 'role'])
    .ignore();
  // Null when another caller made the same pending table current in between.
  const pending = await findRole(db, ref, 'pending');
  if (pending) await createLikeTemplate(db, pending);
  return pending;
}

/** `CREATE TABLE … LIKE` takes no table options, so the template's own definition is used, with this table's id range. */
async function createLikeTemplate(db: Db, t: HotTable): Promise<void> {
  const [rows] = (await db.raw('SHOW CREATE TABLE ??', [HOT_TABLE_TEMPLATE])) as [Record<string, string>[]];
  const ddl = rows[0]['Create Table'];
  const head = `CREATE TABLE \`${HOT_TABLE_TEMPLATE}\``;
  if (!ddl.startsWith(head)) throw new Error(`unexpected definition of ${HOT_TABLE_TEMPLATE}: ${ddl.slice(0, 80)}`);
  const body = ddl.slice(head.length).replace(/ AUTO_INCREMENT=\d+/, '');
  await db.raw(`CREATE TABLE IF NOT EXISTS \`${t.name}\`${body} AUTO_INCREMENT=${firstIdOf(t.tableNo)}`);
  // The template may have changed since its definition was read (src/storage/hotTableSchema.ts).
  await bringUpToDate(db, t.name);
}

/**
 * The message's current table, made (and registered) first if the message has none. Concurrent
 * callers for one message end up with the same table.
 */
export async function ensureHotTable(db: Db, ref: MessageRef): Promise<HotTable> {
  // Short statements of their own, no locking reads: with ingestion batches writing beside them, a
  // locked gap in the registry's key would have them wait for one another, or deadlock.
  for (let attempt = 1; ; attempt++) {
    const existing = await currentHotTable(db, ref);
    if (existing) return existing;
    const pending = await retryOnDeadlock(() => preparePending(db, ref));
    if (pending) {
      try {
        await retryOnDeadlock(() => db('hot_tables').where({ table_no: pending.tableNo, role: 'pending' }).update({ role: 'current' }));
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
 */
export async function beginDrain(db: Db, ref: MessageRef, guard?: (trx: Knex.Transaction) => Promise<void>): Promise<HotTable | null> {
  const draining = await findRole(db, ref, 'draining');
  if (draining) return draining;
  // Asked without a lock first: a locking read that finds no row locks the gap where ingestion's first
  // table for the message would go.
  if (!(await currentHotTable(db, ref))) return null;
  return db.transaction(async (trx) => {
    // The caller's fence (src/storage/fence.ts), held until this commits: a stale archive attempt must
    // not take a table out of service, which may by now hold a restore's rows.
    await guard?.(trx);
    // Waits for every ingestion transaction still writing the current table to commit.
    const locked = await findRole(trx, ref, 'current', 'update');
    if (!locked) return null;
    await trx('hot_tables').where({ table_no: locked.tableNo }).update({ role: 'draining' });
    return locked;
  });
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
 * Drops a drained table and forgets it; safe to run again after a crash between the two, or after a
 * DROP that timed out (HotTableDropTimeoutError).
 */
export async function endDrain(db: Db, t: HotTable, opts: EndDrainOptions = {}): Promise<void> {
  await dropWithin(db, t, opts.lockWaitMs ?? archiveDropLockWaitMs(usersExportTimeLimit().milliseconds), opts.guard);
  await db('hot_tables').where({ table_no: t.tableNo, role: 'draining' }).delete();
}

/**
 * A DROP waits for every transaction that has read the table to end, by default for a year (MySQL) or a
 * day (MariaDB), holding its connection all that time. It gets a session `lock_wait_timeout` of its own
 * (the one setting MySQL and MariaDB both apply to metadata locks), put back before the connection
 * returns to the pool, so no other statement inherits it.
 */
async function dropWithin(db: Db, t: HotTable, lockWaitMs: number, guard?: EndDrainOptions['guard']): Promise<void> {
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
      await on(`DROP TABLE IF EXISTS \`${t.name}\``);
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

/** Whether the table exists (a draining table whose DROP ran before its registry row was removed does not). */
export async function hotTableExists(db: Db, t: HotTable): Promise<boolean> {
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
    .select<{ table_no: string }[]>('table_no');
  return rows.map((r) => table(r.table_no));
}
