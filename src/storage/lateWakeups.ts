/**
 * Late interactions wake a sleeping actor. Once an actor has archived its message and no hot table of
 * the message is left, it sleeps without a timer (workflows/lifecycle.ts). Ingestion notes here, in the
 * transaction that stores them, every message it stored an event for while the message's data was
 * unavailable; the worker's dispatcher (src/client/lateWakeupDispatcher.ts) signals those actors from
 * this table, and the actor then sweeps.
 *
 * Why nothing is left behind: an event goes into a hot table that existed when the actor's last archive
 * or sweep ended (the actor then saw it and keeps a sweep timer), or into one made after that. Every
 * batch writing a table made after it reads the availability row after the archive had marked the
 * message unavailable, so it notes the message; and every signal sent after a note leads to a sweep that
 * starts after it.
 *
 * At most one signal per cleanup interval per message and dispatcher: a message signalled less than an
 * interval ago is signalled again only once the interval has passed, if something new was noted.
 */
import type { Db } from '../db/knex';
import type { MessageRef } from '../shared/types';
import type { RawQuery } from './hotTables';

/**
 * Inside an ingestion batch's transaction, after its hot tables are locked: notes the messages among
 * `refs` whose data is unavailable. Returns how many were noted.
 */
export async function noteLateEvents(query: RawQuery, refs: readonly MessageRef[]): Promise<number> {
  if (refs.length === 0) return 0;
  const wanted = refs.map(() => '(kind = ? AND message_id = ?)').join(' OR ');
  const rows = await query<{ kind: string; message_id: string }[]>(
    `SELECT kind, message_id FROM message_availability WHERE available = 0 AND (${wanted})`,
    refs.flatMap((r) => [r.kind, r.id]),
  );
  if (rows.length === 0) return 0;
  // In key order, so that concurrent batches lock the rows in one order.
  const late = rows.map((r) => [r.kind, r.message_id] as const).sort((a, b) => (a[0] + '\u0000' + a[1] < b[0] + '\u0000' + b[1] ? -1 : 1));
  await query(
    `INSERT INTO late_wakeups (message_kind, message_id, noted_at) VALUES ${late.map(() => '(?, ?, NOW(3))').join(', ')}
     ON DUPLICATE KEY UPDATE noted_at = GREATEST(noted_at, VALUES(noted_at))`,
    late.flat(),
  );
  return late.length;
}

/**
 * Messages to signal now: noted and never signalled, or noted since their last signal when that is at
 * least `intervalSeconds` old. Oldest notes first.
 */
export async function dueWakeups(db: Db, intervalSeconds: number, limit: number): Promise<MessageRef[]> {
  const rows = await db('late_wakeups')
    .whereRaw('signalled_at IS NULL OR (noted_at > signalled_at AND signalled_at <= NOW(3) - INTERVAL ? SECOND)', [intervalSeconds])
    .orderBy('noted_at')
    .limit(limit)
    .select<{ message_kind: string; message_id: string }[]>('message_kind', 'message_id');
  return rows.map((r) => ({ kind: r.message_kind as MessageRef['kind'], id: r.message_id }));
}

/** The database's clock, read before signalling: every note made before it is covered by the signal. */
export async function databaseNow(db: Db): Promise<string> {
  const [rows] = (await db.raw('SELECT DATE_FORMAT(NOW(3), ?) AS t', ['%Y-%m-%d %H:%i:%s.%f'])) as [{ t: string }[]];
  return rows[0].t;
}

/** Records a signal sent at `at` (databaseNow before it). */
export async function markSignalled(db: Db, ref: MessageRef, at: string): Promise<void> {
  await db('late_wakeups')
    .where({ message_kind: ref.kind, message_id: ref.id })
    .update({ signalled_at: db.raw('GREATEST(COALESCE(signalled_at, ?), ?)', [at, at]) });
}

/** Forgets messages signalled more than an interval ago with nothing noted since: the next note signals at once. */
export async function forgetSettledWakeups(db: Db, intervalSeconds: number): Promise<number> {
  return db('late_wakeups')
    .whereRaw('signalled_at <= NOW(3) - INTERVAL ? SECOND', [intervalSeconds])
    .andWhereRaw('noted_at <= signalled_at')
    .delete();
}
