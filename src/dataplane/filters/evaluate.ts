/**
 * Evaluates one retargeting filter into pages of matching user ids, in user id order.
 *
 * Filters that read interaction data first resolve which of their messages are visible (no
 * availability row, or available = 1) and each one's current hot table, in the same read-only snapshot
 * as the query that follows, then read only those tables through ix_interactions_reads: one index
 * range per (message, event type), already ordered by user, so a page costs about its own size however
 * large the message is.
 */
import type { Knex } from 'knex';
import type { Db } from '../../db/knex';
import type { MessageKind, MessageRef } from '../../shared/types';
import { currentHotTable, currentHotTables, type HotTable } from '../../storage/hotTables';
import { conflict } from '../errors';
import { purgedAmong } from '../messages';
import { refKey } from '../model';
import { availabilityOf, inSnapshot, rereadIfTableMoved, sqlTime, type Availability } from '../sql';
import { decodeCursor, encodeCursor } from './cursor';
import { filterTarget, type ParsedFilter, type Window } from './definitions';

export interface EvaluatePage {
  userIds: string[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
  /** Messages the filter names whose interaction data is not available, so they matched nobody. */
  excludedMessages: { kind: MessageKind; id: string; state: string }[];
}

export const EVALUATE_LIMIT_DEFAULT = 1000;
export const EVALUATE_LIMIT_MAX = 10_000;

function purgedError(ref: MessageRef) {
  return conflict(
    'legacy_purged',
    `${ref.kind === 'canvas' ? 'Canvas' : 'campaign'} ${JSON.stringify(ref.id)} cannot be used in retargeting filters: its interaction data was deleted under the former retention policy`,
    { messageKind: ref.kind, messageId: ref.id },
  );
}

/** Rule 10: a filter on a message whose data was deleted under the former policy is refused. */
export async function assertNotPurged(db: Db, refs: readonly MessageRef[]): Promise<void> {
  const purged = await purgedAmong(db, refs);
  const hit = refs.find((r) => purged.has(refKey(r)));
  if (hit) throw purgedError(hit);
}

export async function evaluateFilter(db: Db, filter: ParsedFilter, opts: { cursor?: string; limit?: number } = {}): Promise<EvaluatePage> {
  const after = opts.cursor === undefined ? null : decodeCursor(opts.cursor);
  const limit = opts.limit ?? EVALUATE_LIMIT_DEFAULT;
  if (filter.category === 'specific') return rereadIfTableMoved(() => evaluateOnMessage(db, filter, after, limit));
  const target = filterTarget(filter);
  if (target) await assertNotPurged(db, [target]);

  return rereadIfTableMoved(() =>
    inSnapshot(db, async (trx) => {
      let userIds: string[];
      const excluded: Availability[] = [];
      switch (filter.category) {
        case 'tag': {
          const tagged = (await trx('message_tags').select('kind', 'message_id').where({ tag: filter.tag })) as {
            kind: MessageKind;
            message_id: string;
          }[];
          const refs = tagged.map((t) => ({ kind: t.kind, id: t.message_id }));
          const avail = await availabilityOf(trx, refs);
          const visible = refs.filter((r) => avail.get(refKey(r))?.available !== false);
          for (const r of refs) {
            const a = avail.get(refKey(r));
            if (a && !a.available) excluded.push(a);
          }
          const tables = await currentHotTables(trx, visible);
          // A message without a table never had a row.
          const read = visible.flatMap((ref) => {
            const table = tables.get(ref);
            return table ? [{ ref, table }] : [];
          });
          userIds = await interactionUsers(trx, read, filter.events, {}, filter, after, limit);
          break;
        }
        case 'summary':
          userIds = await summaryUsers(trx, filter.column, filter.flag, filter, after, limit);
          break;
        case 'summary_receipt':
          userIds = await neverReceivedUsers(trx, filter.target, filter.stepId, after, limit);
          break;
        case 'summary_alias':
          userIds = (await trx('user_clicked_aliases')
            .where({ alias: filter.alias })
            .modify((q) => {
              if (after !== null) q.andWhere('user_id', '>', after);
            })
            .orderBy('user_id')
            .limit(limit)
            .pluck('user_id')) as string[];
          break;
      }
      return {
        userIds,
        nextCursor: userIds.length === limit ? encodeCursor(userIds[userIds.length - 1]) : null,
        excludedMessages: excluded.map((a) => ({ kind: a.kind, id: a.id, state: a.state })),
      };
    }),
  );
}

type SpecificFilter = Extract<ParsedFilter, { category: 'specific' }>;

/**
 * The 14 filters on one message, the hot path: three statements and no transaction. The first reads the
 * purge mark and availability, the second the message's table; the page query then carries its own
 * availability condition, so it is consistent by itself (one statement, one snapshot) even if the actor
 * flips the message in between. An archive that drops the table before the page query reads it makes
 * the caller run this again, and the message is then seen unavailable.
 */
async function evaluateOnMessage(db: Db, filter: SpecificFilter, after: string | null, limit: number): Promise<EvaluatePage> {
  const t = filter.target;
  const [rows] = (await db.raw(
    'SELECT (SELECT COUNT(*) FROM legacy_purged_messages WHERE kind = ? AND message_id = ?) AS purged, ' +
      'a.state, a.available FROM (SELECT 1 AS one) x LEFT JOIN message_availability a ON a.kind = ? AND a.message_id = ?',
    [t.kind, t.id, t.kind, t.id],
  )) as [{ purged: number | string; state: string | null; available: number | null }[]];
  const status = rows[0];
  if (Number(status.purged) > 0) throw purgedError(t);
  if (status.state !== null && Number(status.available) === 0) {
    return { userIds: [], nextCursor: null, excludedMessages: [{ kind: t.kind, id: t.id, state: status.state }] };
  }
  const table = await currentHotTable(db, t);
  const userIds = table ? await interactionUsers(db, [{ ref: t, table }], filter.events, filter, filter, after, limit, t) : [];
  return { userIds, nextCursor: userIds.length === limit ? encodeCursor(userIds[userIds.length - 1]) : null, excludedMessages: [] };
}

interface RowConditions {
  variantId?: string;
  stepId?: string;
  variationId?: string;
  alias?: string;
}

/** A message whose rows a filter reads, and the table they are in. */
export interface MessageTable {
  ref: MessageRef;
  table: HotTable;
}

/**
 * SQL of the interaction-reading filters, exported so a test can EXPLAIN exactly what runs.
 * One `(message, event type)` equality group per index range; per-row conditions after it. One message
 * is read straight from its table, in user order off the index; several are one UNION ALL branch per
 * table, grouped by user over the branches.
 */
export function interactionUsersQuery(
  db: Db,
  messages: readonly MessageTable[],
  events: readonly string[],
  row: RowConditions,
  window: Window,
  after: string | null,
  limit: number,
  /** Adds "and the message is not unavailable", evaluated once, in the statement's own snapshot. */
  onlyIfAvailable?: MessageRef,
): Knex.QueryBuilder {
  if (messages.length === 0) throw new Error('interactionUsersQuery needs at least one message');
  const rowsOf = ({ ref, table }: MessageTable): Knex.QueryBuilder => {
    const b = db.from(db.raw('?? AS i FORCE INDEX (??)', [table.name, 'ix_interactions_reads'])).where((w) => {
      for (const e of events)
        w.orWhere((x) => {
          x.where('i.message_kind', ref.kind).andWhere('i.message_id', ref.id).andWhere('i.event_type', e);
        });
    });
    if (row.variantId !== undefined) b.andWhere('i.variant_id', row.variantId);
    if (row.stepId !== undefined) b.andWhere('i.step_id', row.stepId);
    if (row.variationId !== undefined) b.andWhere('i.variation_id', row.variationId);
    if (row.alias !== undefined) b.andWhere('i.alias', row.alias);
    if (after !== null) b.andWhere('i.user_id', '>', after);
    return b;
  };
  const q: Knex.QueryBuilder =
    messages.length === 1
      ? rowsOf(messages[0]).select('i.user_id')
      : db
          .from(
            db
              .queryBuilder()
              .unionAll(
                messages.map((m) => rowsOf(m).select('i.user_id', 'i.occurred_at')),
                true,
              )
              .as('i'),
          )
          .select('i.user_id');
  if (onlyIfAvailable) {
    q.whereNotExists((sub) => {
      sub
        .from('message_availability as a')
        .select(db.raw('1'))
        .where({ 'a.kind': onlyIfAvailable.kind, 'a.message_id': onlyIfAvailable.id, 'a.available': false });
    });
  }
  q.groupBy('i.user_id');
  if (window.after !== undefined) q.having(db.raw('MAX(??)', ['i.occurred_at']), '>=', sqlTime(window.after));
  if (window.before !== undefined) q.having(db.raw('MAX(??)', ['i.occurred_at']), '<', sqlTime(window.before));
  return q.orderBy('i.user_id').limit(limit);
}

async function interactionUsers(
  db: Db,
  messages: readonly MessageTable[],
  events: readonly string[],
  row: RowConditions,
  window: Window,
  after: string | null,
  limit: number,
  onlyIfAvailable?: MessageRef,
): Promise<string[]> {
  if (messages.length === 0) return [];
  const rows = (await interactionUsersQuery(db, messages, events, row, window, after, limit, onlyIfAvailable)) as { user_id: string }[];
  return rows.map((r) => r.user_id);
}

async function summaryUsers(db: Db, column: string, flag: boolean, window: Window, after: string | null, limit: number): Promise<string[]> {
  const q = db('users').select('id');
  if (flag) q.whereNotNull(column);
  if (window.after !== undefined) q.andWhere(column, '>=', sqlTime(window.after));
  if (window.before !== undefined) q.andWhere(column, '<', sqlTime(window.before));
  if (after !== null) q.andWhere('id', '>', after);
  return (await q.orderBy('id').limit(limit).pluck('id')) as string[];
}

/** Users (of the users table) with no receipt of this campaign or Canvas step; unaffected by expiry. */
async function neverReceivedUsers(db: Db, target: MessageRef, stepId: string, after: string | null, limit: number): Promise<string[]> {
  const q = db('users as u')
    .select('u.id')
    .whereNotExists((s) => {
      s.from('user_message_receipts as r')
        .select(db.raw('1'))
        .where({ 'r.message_kind': target.kind, 'r.message_id': target.id, 'r.step_id': stepId })
        .andWhere('r.user_id', db.ref('u.id'));
    });
  if (after !== null) q.andWhere('u.id', '>', after);
  return (await q.orderBy('u.id').limit(limit).pluck('u.id')) as string[];
}
