/**
 * MySQL side of bulk restores: which messages a request covers, how each one ended, and the listings
 * the summary e-mail and the dry run need. Every page is a keyset page on (kind, message_id), so a
 * request over tens of thousands of messages never runs an unbounded statement or an OFFSET scan.
 *
 * message_availability is written by each actor on every transition, so it is the consistent place to
 * find which messages are expired without asking thousands of actors.
 */
import { rereadIfTableMoved } from '../dataplane/sql';
import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import type { LifecycleState, MessageKind, MessageRef } from '../shared/types';
import { currentHotTable } from '../storage/hotTables';
import {
  MAX_FAILURES_KEPT,
  type BulkFailure,
  type BulkItemFinalOutcome,
  type BulkItemOutcome,
  type BulkItemResult,
  type BulkRestorePreview,
  type BulkSelection,
  type PreviewClass,
  type PreviewItem,
  type RegisterItemsResult,
} from './types';

export const ITEMS_TABLE = 'bulk_restore_items';

/** States in which the data is not available and a restore has something to do. */
export const RESTORABLE_STATES: readonly LifecycleState[] = ['archiving', 'expired', 'restoring'];

export const UNKNOWN_MESSAGE_REASON = 'unknown message: no campaign or Canvas with this id has any interaction data or lifecycle';

interface ClassifiedRef extends MessageRef {
  name: string | null;
  state: string | null;
  action: PreviewClass;
}

/** `(kind, message_id) > (after.kind, after.id)` written so that MySQL can use the key for the range. */
function afterKey(qb: Knex.QueryBuilder, kindCol: string, idCol: string, after: MessageRef | null): void {
  if (!after) return;
  void qb.where((w) => {
    void w.where(kindCol, '>', after.kind).orWhere((x) => {
      void x.where(kindCol, '=', after.kind).andWhere(idCol, '>', after.id);
    });
  });
}

function classifyState(state: string | null): PreviewClass {
  return state !== null && (RESTORABLE_STATES as readonly string[]).includes(state) ? 'restore' : 'already_available';
}

function availableReason(state: string | null): string {
  return state === null ? 'available: the message has never stopped' : `available (${state})`;
}

interface TagRow {
  kind: MessageKind;
  message_id: string;
  state: string | null;
  name: string | null;
}

/** How many messages of these kinds carry the tag (what a bulk restore by tag would cover). */
export async function countTagged(db: Db, tag: string, kinds: readonly MessageKind[]): Promise<number> {
  const row = (await db('message_tags')
    .where('tag', tag)
    .whereIn('kind', [...kinds])
    .count({ n: '*' })
    .first()) as { n: number | string } | undefined;
  return Number(row?.n ?? 0);
}

/** One keyset page of the messages carrying a tag, with their recorded state and name. */
export async function tagPage(
  db: Db,
  tag: string,
  kinds: readonly MessageKind[],
  after: MessageRef | null,
  limit: number,
): Promise<ClassifiedRef[]> {
  const qb = db('message_tags as t')
    .leftJoin('message_availability as a', function joinAvailability() {
      this.on('a.kind', '=', 't.kind').andOn('a.message_id', '=', 't.message_id');
    })
    .leftJoin('messages as m', function joinMessages() {
      this.on('m.kind', '=', 't.kind').andOn('m.id', '=', 't.message_id');
    })
    .where('t.tag', tag)
    .whereIn('t.kind', [...kinds])
    .select('t.kind', 't.message_id', 'a.state', 'm.name')
    .orderBy([{ column: 't.kind' }, { column: 't.message_id' }])
    .limit(limit);
  afterKey(qb, 't.kind', 't.message_id', after);
  const rows = (await qb) as TagRow[];
  return rows.map((r) => ({ kind: r.kind, id: r.message_id, name: r.name, state: r.state, action: classifyState(r.state) }));
}

/**
 * Classifies listed messages. Unknown means nothing anywhere: no message record, no availability record
 * (no actor ever ran) and no interaction rows. A message with rows but no record has simply never
 * stopped: its data is available.
 */
export async function classifyRefs(db: Db, refs: readonly MessageRef[]): Promise<ClassifiedRef[]> {
  const out: ClassifiedRef[] = [];
  for (let i = 0; i < refs.length; i += 500) {
    const batch = refs.slice(i, i + 500);
    const pairs = batch.map((r) => [r.kind, r.id]);
    const messages = await db('messages')
      .whereIn(['kind', 'id'], pairs)
      .select<{ kind: string; id: string; name: string | null }[]>('kind', 'id', 'name');
    const states = await db('message_availability')
      .whereIn(['kind', 'message_id'], pairs)
      .select<{ kind: string; message_id: string; state: string }[]>('kind', 'message_id', 'state');
    // Ids are exact (migration 007): a row answers the ref with exactly its spelling.
    const key = (kind: string, id: string) => `${kind}:${id}`;
    const nameOf = new Map(messages.map((m) => [key(m.kind, m.id), m.name]));
    const stateOf = new Map(states.map((s) => [key(s.kind, s.message_id), s.state]));
    for (const ref of batch) {
      const k = key(ref.kind, ref.id);
      const state = stateOf.get(k) ?? null;
      let action = classifyState(state);
      if (!nameOf.has(k) && state === null && !(await hasHotRow(db, ref))) action = 'unknown';
      out.push({ ...ref, name: nameOf.get(k) ?? null, state, action });
    }
  }
  return out;
}

/** Whether the message's current table holds a row; a message without a table has none. */
async function hasHotRow(db: Db, ref: MessageRef): Promise<boolean> {
  return rereadIfTableMoved(async () => {
    const table = await currentHotTable(db, ref);
    return table !== null && (await db.from(table.name).where({ message_kind: ref.kind, message_id: ref.id }).first('id')) !== undefined;
  });
}

function itemRow(executionKey: string, c: ClassifiedRef) {
  const outcome: BulkItemOutcome = c.action === 'restore' ? 'pending' : c.action === 'unknown' ? 'failed' : 'already_available';
  return {
    execution_key: executionKey,
    kind: c.kind,
    message_id: c.id,
    outcome,
    row_count: 0,
    reason: c.action === 'unknown' ? UNKNOWN_MESSAGE_REASON : c.action === 'already_available' ? availableReason(c.state) : null,
  };
}

/** Idempotent: a retried registration inserts what is missing and leaves what is there. */
async function insertItems(db: Db, executionKey: string, classified: readonly ClassifiedRef[]): Promise<void> {
  if (classified.length === 0) return;
  await db(ITEMS_TABLE)
    .insert(classified.map((c) => itemRow(executionKey, c)))
    .onConflict(['execution_key', 'kind', 'message_id'])
    .ignore();
}

export interface RegisterProgress {
  /** Last message registered: a retried registration continues after it. */
  after: MessageRef | null;
  /** Index into an id list to continue from. */
  offset: number;
}

/**
 * Fixes the set of messages a request covers, classifying each: expired (to restore), available
 * (reported, not touched) or unknown (failed). Calls onPage after each page so the caller can record
 * where to resume.
 */
export async function registerItems(
  db: Db,
  executionKey: string,
  selection: BulkSelection,
  opts: { resumeFrom?: RegisterProgress; pageSize?: number; onPage?: (p: RegisterProgress) => void } = {},
): Promise<RegisterItemsResult> {
  const pageSize = opts.pageSize ?? 1_000;
  if (selection.by === 'tag') {
    let after = opts.resumeFrom?.after ?? null;
    for (;;) {
      const page = await tagPage(db, selection.tag, selection.kinds, after, pageSize);
      await insertItems(db, executionKey, page);
      if (page.length === 0) break;
      after = { kind: page[page.length - 1].kind, id: page[page.length - 1].id };
      opts.onPage?.({ after, offset: 0 });
      if (page.length < pageSize) break;
    }
  } else {
    for (let offset = opts.resumeFrom?.offset ?? 0; offset < selection.refs.length; offset += pageSize) {
      const batch = selection.refs.slice(offset, offset + pageSize);
      await insertItems(db, executionKey, await classifyRefs(db, batch));
      opts.onPage?.({ after: null, offset: offset + batch.length });
    }
  }
  return itemCounts(db, executionKey);
}

export async function itemCounts(db: Db, executionKey: string): Promise<RegisterItemsResult> {
  const rows = await db(ITEMS_TABLE)
    .where({ execution_key: executionKey })
    .groupBy('outcome')
    .select('outcome')
    .count<{ outcome: BulkItemOutcome; n: number | string }[]>({ n: '*' });
  const count = (o: BulkItemOutcome) => Number(rows.find((r) => r.outcome === o)?.n ?? 0);
  const failures = await db(ITEMS_TABLE)
    .where({ execution_key: executionKey, outcome: 'failed' })
    .orderBy([{ column: 'kind' }, { column: 'message_id' }])
    .limit(MAX_FAILURES_KEPT)
    .select<{ kind: MessageKind; message_id: string; reason: string | null }[]>('kind', 'message_id', 'reason');
  return {
    total: rows.reduce((n, r) => n + Number(r.n), 0),
    pending: count('pending'),
    alreadyAvailable: count('already_available'),
    failed: count('failed'),
    failures: failures.map((f): BulkFailure => ({ kind: f.kind, id: f.message_id, reason: f.reason ?? 'failed' })),
  };
}

/** The next keyset page of messages still to restore. */
export async function pendingPage(db: Db, executionKey: string, after: MessageRef | null, limit: number): Promise<MessageRef[]> {
  const qb = db(ITEMS_TABLE)
    .where({ execution_key: executionKey, outcome: 'pending' })
    .select('kind', 'message_id')
    .orderBy([{ column: 'kind' }, { column: 'message_id' }])
    .limit(limit);
  afterKey(qb, 'kind', 'message_id', after);
  const rows = (await qb) as { kind: MessageKind; message_id: string }[];
  return rows.map((r) => ({ kind: r.kind, id: r.message_id }));
}

/**
 * `<state>@<revision>` of a message's availability record, or null without one: changes whenever its
 * actor records a transition, which is what the restore watch waits for.
 */
export async function availabilityRevision(db: Db, ref: MessageRef): Promise<string | null> {
  const row = await db('message_availability')
    .where({ kind: ref.kind, message_id: ref.id })
    .first<{ state: string; revision: string | number } | undefined>('state', 'revision');
  return row ? `${row.state}@${row.revision}` : null;
}

export async function recordItemResult(db: Db, executionKey: string, result: BulkItemResult): Promise<void> {
  await db(ITEMS_TABLE)
    .where({ execution_key: executionKey, kind: result.kind, message_id: result.id })
    .update({
      outcome: result.outcome,
      row_count: result.rowCount,
      reason: result.reason === null ? null : result.reason.slice(0, 1000),
      updated_at: db.raw('CURRENT_TIMESTAMP(3)'),
    });
}

export interface ListedItem extends BulkItemResult {
  name: string | null;
}

/** Items with one outcome, with the message names, in (kind, id) order, at most `limit`. */
export async function listItems(db: Db, executionKey: string, outcome: BulkItemFinalOutcome, limit: number): Promise<ListedItem[]> {
  const rows = await db(`${ITEMS_TABLE} as i`)
    .leftJoin('messages as m', function joinMessages() {
      this.on('m.kind', '=', 'i.kind').andOn('m.id', '=', 'i.message_id');
    })
    .where({ 'i.execution_key': executionKey, 'i.outcome': outcome })
    .orderBy([{ column: 'i.kind' }, { column: 'i.message_id' }])
    .limit(limit)
    .select<{ kind: MessageKind; message_id: string; row_count: number | string; reason: string | null; name: string | null }[]>(
      'i.kind',
      'i.message_id',
      'i.row_count',
      'i.reason',
      'm.name',
    );
  return rows.map((r) => ({ kind: r.kind, id: r.message_id, outcome, rowCount: Number(r.row_count), reason: r.reason, name: r.name }));
}

/** What a request would do, without registering or signalling anything. */
export async function previewSelection(db: Db, selection: BulkSelection, limit: number): Promise<BulkRestorePreview> {
  const items: PreviewItem[] = [];
  let total = 0;
  let toRestore = 0;
  let alreadyAvailable = 0;
  let unknown = 0;
  const tally = (c: ClassifiedRef) => {
    total++;
    if (c.action === 'restore') toRestore++;
    else if (c.action === 'unknown') unknown++;
    else alreadyAvailable++;
    if (items.length < limit) items.push({ kind: c.kind, id: c.id, name: c.name, state: c.state, action: c.action });
  };
  if (selection.by === 'tag') {
    let after: MessageRef | null = null;
    for (;;) {
      const page = await tagPage(db, selection.tag, selection.kinds, after, 1_000);
      page.forEach(tally);
      if (page.length < 1_000) break;
      after = { kind: page[page.length - 1].kind, id: page[page.length - 1].id };
    }
  } else {
    (await classifyRefs(db, selection.refs)).forEach(tally);
  }
  return {
    selection:
      selection.by === 'tag' ? { by: 'tag', tag: selection.tag, kinds: selection.kinds } : { by: 'ids', count: selection.refs.length },
    total,
    toRestore,
    alreadyAvailable,
    unknown,
    items,
    truncated: total > items.length,
  };
}
