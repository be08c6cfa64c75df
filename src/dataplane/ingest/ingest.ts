/**
 * Stores one validated batch: in a single transaction, the events not seen before go to their
 * messages' hot tables (src/storage/hotTables.ts) and the event-id ledger, and the per-user summaries, receipts, (user, message)
 * pairs, clicked aliases and per-message analytics are brought up to date with exactly those events.
 * A retried batch (or an event re-sent after its message expired and its row left the hot table) is
 * found in the ledger and counted as a duplicate: nothing is stored twice and no aggregate counts it
 * twice.
 *
 * Events for stopped or expired messages are stored like any other (rule 11): for an expired message
 * they stay invisible until restored, and the actor's sweep moves them to long-term storage. The batch
 * notes such messages in `late_wakeups` so that an actor asleep after its archive is woken for them
 * (src/storage/lateWakeups.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from '../../db/knex';
import type { MessageRef } from '../../shared/types';
import { ensureHotTable, lockCurrentTables, type HotTable } from '../../storage/hotTables';
import { ER_DUP_ENTRY, ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, sqlErrno, valuesPlaceholders } from '../sql';
import type { InteractionEvent } from './events';
import { inTransaction, type SqlSession, type SqlValue } from './session';
import { batchDeltas, USER_TIME_COLUMNS, type BatchDeltas } from './summaries';
import { erasedThroughOf } from '../../privacy/erasureRecords';
import { noteLateEvents } from '../../storage/lateWakeups';
import { promoteIfGrown, type SegmentWrites } from '../../storage/hotTablePromotion';

export interface IngestResult {
  received: number;
  stored: number;
  duplicates: number;
  /** Events of an erased user that occurred before the erasure: refused, never stored (src/privacy/erasureRecords.ts). */
  erased: number;
}

const ATTEMPTS = 5;

const toSql = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;

/** Raised inside the transaction on a duplicate event id: a concurrent batch committed it first. */
class EventIdRace extends Error {}

/**
 * Raised inside the transaction when a message has no table yet: made outside it (DDL commits any
 * transaction it runs in), then the batch starts over.
 */
class MissingHotTables extends Error {
  constructor(readonly refs: MessageRef[]) {
    super(`no hot table yet for ${refs.length} message(s)`);
  }
}

export interface IngestOptions {
  /**
   * A message's move to a table of its own, after the batch committed, failed (it is looked at again
   * later). Without it the error is the caller's, though the batch is stored.
   */
  onPromotionError?: (err: unknown, ref: MessageRef) => void;
}

export async function ingestEvents(db: Db, events: readonly InteractionEvent[], opts: IngestOptions = {}): Promise<IngestResult> {
  if (events.length === 0) return { received: 0, stored: 0, duplicates: 0, erased: 0 };
  // The ledger alone answers "seen before?": the hot table has no key on event ids (migration 004).
  let tablesMade = 0;
  const segmentWrites: SegmentWrites[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await inTransaction(db, (s) => {
        segmentWrites.length = 0;
        return storeOnce(s, events, segmentWrites);
      });
      await promoteGrown(db, segmentWrites, opts);
      return result;
    } catch (err) {
      // Not an attempt used up: the next one finds the tables.
      if (err instanceof MissingHotTables && tablesMade++ < ATTEMPTS) {
        for (const ref of err.refs) await ensureHotTable(db, ref);
        attempt -= 1;
        continue;
      }
      // A deadlock or lock timeout rolls the whole batch back, as does a concurrent insert of one of
      // its event ids (a client retrying while the first attempt is still running): start over, and the
      // next attempt sees what the other transaction committed.
      const errno = sqlErrno(err);
      const retryable = err instanceof EventIdRace || errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT;
      if (!retryable || attempt >= ATTEMPTS) throw err;
      await sleep(5 * attempt + Math.random() * 20);
    }
  }
}

async function promoteGrown(db: Db, writes: readonly SegmentWrites[], opts: IngestOptions): Promise<void> {
  for (const w of writes) {
    try {
      await promoteIfGrown(db, w);
    } catch (err) {
      if (!opts.onPromotionError) throw new PromotionAfterCommitError(err);
      opts.onPromotionError(err, w.ref);
    }
  }
}

/** The batch is stored; moving a grown message to a table of its own afterwards failed. */
export class PromotionAfterCommitError extends Error {
  override name = 'PromotionAfterCommitError';
  constructor(override readonly cause: unknown) {
    super(
      `the batch is stored, but moving a message to a hot table of its own failed: ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
}

async function storeOnce(trx: SqlSession, events: readonly InteractionEvent[], segmentWrites: SegmentWrites[]): Promise<IngestResult> {
  let fresh: readonly InteractionEvent[] | null = null;
  // Optimistic: a batch seen for the first time (the usual case) goes straight into the ledger. A
  // known id fails just this statement (InnoDB undoes the statement; the transaction goes on) and
  // the batch is sorted out below. Sorted, so concurrent batches take the ledger's locks in one order.
  const ids = events.map((e) => e.eventId).sort();
  try {
    await trx.query(`INSERT INTO ingested_events (event_id) VALUES ${valuesPlaceholders(ids.length, 1)}`, ids);
    fresh = events;
  } catch (err) {
    if (sqlErrno(err) !== ER_DUP_ENTRY) throw err;
  }
  if (fresh === null) {
    const seenRows = await trx.query<{ event_id: string }[]>(
      `SELECT event_id FROM ingested_events WHERE event_id IN ${valuesPlaceholders(1, ids.length)}`,
      ids,
    );
    // Event ids are exact: `E1` and `e1` are two events.
    const seen = new Set(seenRows.map((r) => r.event_id));
    fresh = events.filter((e) => !seen.has(e.eventId));
    if (fresh.length === 0) return { received: events.length, stored: 0, duplicates: events.length, erased: 0 };
    const ledger = fresh.map((e) => e.eventId).sort();
    await insertOrRace(trx, `INSERT INTO ingested_events (event_id) VALUES ${valuesPlaceholders(ledger.length, 1)}`, ledger);
  }

  // An erased user's old events stay erased: a late event, or a batch retried with them, is refused here
  // (in the ledger, so a later copy is a duplicate). Checked before anything of the batch is written.
  const seenCount = events.length - fresh.length;
  const erasedThrough = await erasedThroughOf(trx.query, [...new Set(fresh.map((e) => e.userId))]);
  const kept = erasedThrough.size === 0 ? fresh : fresh.filter((e) => !isErased(e, erasedThrough));
  const erased = fresh.length - kept.length;
  fresh = kept;
  if (fresh.length === 0) return { received: events.length, stored: 0, duplicates: seenCount, erased };

  // Each message's rows go to its own table, locked in share mode so the archive cannot take it out of
  // service before this commits (src/storage/hotTables.ts).
  const refs = new Map<string, MessageRef>();
  const written = new Map<string, number>();
  for (const e of fresh) {
    const k = `${e.messageKind}\u0000${e.messageId}`;
    if (!refs.has(k)) refs.set(k, { kind: e.messageKind, id: e.messageId });
    written.set(k, (written.get(k) ?? 0) + 1);
  }
  const tables = await lockCurrentTables(trx.query, [...refs.values()]);
  const missing = [...refs.values()].filter((r) => !tables.has(r));
  if (missing.length > 0) throw new MissingHotTables(missing);
  // One statement per table: a message's events, spelled exactly as its id.
  const byTable = new Map<string, InteractionEvent[]>();
  for (const e of fresh) {
    const name = (tables.get(refs.get(`${e.messageKind}\u0000${e.messageId}`) as MessageRef) as HotTable).name;
    const list = byTable.get(name);
    if (list) list.push(e);
    else byTable.set(name, [e]);
  }
  for (const [name, events] of byTable) await insertRows(trx, name, events);
  for (const [k, ref] of refs) {
    const segment = tables.get(ref) as HotTable;
    if (segment.shared) segmentWrites.push({ ref, segment, rows: written.get(k) ?? 0 });
  }
  await noteLateEvents(trx.query, [...refs.values()]);

  await applyDeltas(trx, batchDeltas(fresh));
  return { received: events.length, stored: fresh.length, duplicates: seenCount, erased };
}

function isErased(e: InteractionEvent, erasedThrough: ReadonlyMap<string, string>): boolean {
  const through = erasedThrough.get(e.userId);
  return through !== undefined && Date.parse(e.occurredAt) <= Date.parse(through);
}

async function insertRows(trx: SqlSession, table: string, events: readonly InteractionEvent[]): Promise<void> {
  const rowValues: SqlValue[] = [];
  for (const e of events) {
    rowValues.push(
      e.eventId,
      e.messageKind,
      e.messageId,
      e.userId,
      e.type,
      e.variantId ?? null,
      e.stepId ?? null,
      e.variationId ?? null,
      e.alias ?? null,
      e.channel ?? null,
      toSql(e.occurredAt),
    );
  }
  await trx.query(
    `INSERT INTO \`${table}\` (event_id, message_kind, message_id, user_id, event_type, variant_id, step_id, variation_id, alias, channel, occurred_at) VALUES ${valuesPlaceholders(events.length, 11)}`,
    rowValues,
  );
}

/** A duplicate key in the ledger: a concurrent batch committed one of these ids since it was looked up. */
async function insertOrRace(trx: SqlSession, sql: string, values: readonly SqlValue[]): Promise<void> {
  try {
    await trx.query(sql, values);
  } catch (err) {
    if (sqlErrno(err) === ER_DUP_ENTRY) throw new EventIdRace((err as Error).message);
    throw err;
  }
}

/** `col` keeps the later of the stored and the new value; NULL on either side never wins. */
const keepLater = (col: string) => `${col} = GREATEST(COALESCE(${col}, VALUES(${col})), COALESCE(VALUES(${col}), ${col}))`;

async function applyDeltas(trx: SqlSession, d: BatchDeltas): Promise<void> {
  if (d.users.length > 0) {
    // Only the summary columns this batch touches: fewer values to send and fewer to compare per row.
    const touched = USER_TIME_COLUMNS.filter((c) => d.users.some((u) => u.times[c] !== undefined));
    const cols = ['id', 'first_seen_at', ...touched];
    const values: SqlValue[] = [];
    for (const u of d.users) {
      values.push(u.id, toSql(u.firstSeenAt));
      for (const c of touched) {
        const t = u.times[c];
        values.push(t === undefined ? null : toSql(t));
      }
    }
    await trx.query(
      `INSERT INTO users (${cols.join(', ')}) VALUES ${valuesPlaceholders(d.users.length, cols.length)} ` +
        `ON DUPLICATE KEY UPDATE ${['first_seen_at = LEAST(first_seen_at, VALUES(first_seen_at))', ...touched.map(keepLater)].join(', ')}`,
      values,
    );
  }
  if (d.receipts.length > 0) {
    const values = d.receipts.flatMap((r) => [r.messageKind, r.messageId, r.stepId, r.userId, toSql(r.first), toSql(r.last)]);
    await trx.query(
      `INSERT INTO user_message_receipts (message_kind, message_id, step_id, user_id, first_received_at, last_received_at) VALUES ${valuesPlaceholders(d.receipts.length, 6)} ` +
        'ON DUPLICATE KEY UPDATE first_received_at = LEAST(first_received_at, VALUES(first_received_at)), last_received_at = GREATEST(last_received_at, VALUES(last_received_at))',
      values,
    );
  }
  if (d.userMessages.length > 0) {
    // Written once per pair and never by the archive or the restore: `id = id` leaves a known pair alone.
    const values = d.userMessages.flatMap((m) => [m.userId, m.messageKind, m.messageId]);
    await trx.query(
      `INSERT INTO user_messages (user_id, message_kind, message_id) VALUES ${valuesPlaceholders(d.userMessages.length, 3)} ON DUPLICATE KEY UPDATE user_id = user_id`,
      values,
    );
  }
  if (d.aliases.length > 0) {
    const values = d.aliases.flatMap((a) => [a.alias, a.userId, toSql(a.last)]);
    await trx.query(
      `INSERT INTO user_clicked_aliases (alias, user_id, last_clicked_at) VALUES ${valuesPlaceholders(d.aliases.length, 3)} ` +
        'ON DUPLICATE KEY UPDATE last_clicked_at = GREATEST(last_clicked_at, VALUES(last_clicked_at))',
      values,
    );
  }
  // Last: these few rows are shared by every batch of a message, so they are locked for the shortest time.
  if (d.analytics.length > 0) {
    const values = d.analytics.flatMap((a) => [
      a.messageKind,
      a.messageId,
      a.day,
      a.eventType,
      a.variantId,
      a.stepId,
      a.variationId,
      a.channel,
      a.count,
    ]);
    await trx.query(
      `INSERT INTO message_analytics (message_kind, message_id, day, event_type, variant_id, step_id, variation_id, channel, count) VALUES ${valuesPlaceholders(d.analytics.length, 9)} ` +
        'ON DUPLICATE KEY UPDATE count = count + VALUES(count)',
      values,
    );
  }
}
