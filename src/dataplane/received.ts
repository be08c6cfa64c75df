/**
 * What users received, per campaign and Canvas, read from the hot interaction rows of messages whose
 * data is available: `user_messages` names each user's messages, and each message's rows of those
 * users are read from ix_interactions_reads of its own table. Shared by the profile lists (Campaigns
 * Received, Canvas Messages Received) and the users export (campaigns_received, canvases_received);
 * expired messages are left out (rule 6).
 */
import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import type { MessageKind, MessageRef } from '../shared/types';
import { currentHotTables, type HotTable } from '../storage/hotTables';
import { loadMessages, type StoredMessage } from './messages';
import { refKey, type Component, type EventType } from './model';
import { availabilityOf, inSnapshot, isoTime, rereadIfTableMoved } from './sql';

/** One (user, message) with the facts the lists show; times are ISO-8601 or null. */
export interface MessageFacts {
  message: StoredMessage;
  lastReceived: string | null;
  openedEmail: boolean;
  openedPush: boolean;
  clickedEmail: boolean;
  clickedInAppMessage: boolean;
  converted: boolean;
  inControl: boolean;
  /** Campaigns: the variant of the latest receipt. */
  variant: Component | null;
  /** Canvases. */
  lastEntered: string | null;
  variation: Component | null;
  lastExited: string | null;
  steps: { step: Component; lastReceived: string }[];
}

export interface UserReceived {
  campaigns: MessageFacts[];
  canvases: MessageFacts[];
}

interface GroupRow {
  user_id: string;
  message_kind: MessageKind;
  message_id: string;
  event_type: string;
  variant_id: string | null;
  step_id: string | null;
  variation_id: string | null;
  channel: string | null;
  last_at: string;
}

function component(list: Component[], id: string | null): Component | null {
  if (id === null) return null;
  return list.find((c) => c.id === id) ?? { id, name: id };
}

/** The event types the lists are built from; a user's other rows of a message add nothing to them. */
const FACT_EVENT_TYPES: readonly EventType[] = [
  'received',
  'opened',
  'clicked',
  'converted',
  'control_group',
  'entered_variation',
  'exited',
];

/** Messages per statement when reading the facts: one UNION ALL of this many ranges of ix_interactions_reads. */
const MESSAGES_PER_STATEMENT = 50;

/** The messages each given user has interaction rows for, from `user_messages` (its primary key). */
export function userMessagesQuery(db: Db, userIds: readonly string[]): Knex.QueryBuilder {
  return db('user_messages')
    .select('user_id', 'message_kind', 'message_id')
    .whereIn('user_id', userIds as string[]);
}

/** Users of one message whose facts are wanted, and the message's current table. */
export interface WantedFacts {
  ref: MessageRef;
  table: HotTable;
  users: readonly string[];
}

/**
 * One row per distinct fact of the given users in one message, however many times it happened:
 * through ix_interactions_reads of the message's table, one range per (event type, user), so a message
 * with millions of rows costs what the users' own rows cost.
 */
export function receivedRowsQuery(db: Db, table: HotTable, ref: MessageRef, userIds: readonly string[]): Knex.QueryBuilder {
  return db
    .from(db.raw('?? FORCE INDEX (??)', [table.name, 'ix_interactions_reads']))
    .select('user_id', 'message_kind', 'message_id', 'event_type', 'variant_id', 'step_id', 'variation_id', 'channel')
    .max('occurred_at as last_at')
    .where({ message_kind: ref.kind, message_id: ref.id })
    .whereIn('event_type', FACT_EVENT_TYPES as EventType[])
    .whereIn('user_id', userIds as string[])
    .groupBy('user_id', 'message_kind', 'message_id', 'event_type', 'variant_id', 'step_id', 'variation_id', 'channel');
}

/** receivedRowsQuery of several messages in one statement (UNION ALL), each branch on its message's table. */
export function receivedFactsQuery(db: Db, wanted: readonly WantedFacts[]): Knex.QueryBuilder {
  const parts = wanted.map((m) => receivedRowsQuery(db, m.table, m.ref, m.users));
  return parts.length === 1 ? parts[0] : db.queryBuilder().unionAll(parts, true);
}

/** Received lists of each given user, keyed by user id (exact: `Bob` is not `bob`). */
export async function receivedByUser(db: Db, userIds: readonly string[]): Promise<Map<string, UserReceived>> {
  if (userIds.length === 0) return new Map();
  return rereadIfTableMoved(() =>
    inSnapshot(db, async (trx) => {
      const out = new Map<string, UserReceived>();
      const pairs = (await userMessagesQuery(trx, userIds)) as { user_id: string; message_kind: MessageKind; message_id: string }[];
      const byMessage = new Map<string, { ref: MessageRef; users: string[] }>();
      for (const p of pairs) {
        const ref = { kind: p.message_kind, id: p.message_id };
        const entry = byMessage.get(refKey(ref)) ?? { ref, users: [] };
        entry.users.push(p.user_id);
        byMessage.set(refKey(ref), entry);
      }
      const refs = [...byMessage.values()].map((m) => m.ref);
      const avail = await availabilityOf(trx, refs);
      const messages = await loadMessages(trx, refs);
      // Expired messages are as if never there: their rows are not even read.
      const visible = [...byMessage.entries()]
        .filter(([key]) => avail.get(key)?.available !== false && messages.has(key))
        .map(([, m]) => m);
      const tables = await currentHotTables(
        trx,
        visible.map((m) => m.ref),
      );
      // A message without a table never had a row.
      const wanted = visible.flatMap((m) => {
        const table = tables.get(m.ref);
        return table ? [{ ...m, table }] : [];
      });
      const rows: GroupRow[] = [];
      for (let i = 0; i < wanted.length; i += MESSAGES_PER_STATEMENT) {
        rows.push(...((await receivedFactsQuery(trx, wanted.slice(i, i + MESSAGES_PER_STATEMENT))) as GroupRow[]));
      }

      const facts = new Map<string, MessageFacts>();
      for (const r of rows) {
        const mKey = refKey({ kind: r.message_kind, id: r.message_id });
        const message = messages.get(mKey);
        if (!message) continue;
        const key = `${r.user_id}\u0000${mKey}`;
        let f = facts.get(key);
        if (!f) {
          f = {
            message,
            lastReceived: null,
            openedEmail: false,
            openedPush: false,
            clickedEmail: false,
            clickedInAppMessage: false,
            converted: false,
            inControl: false,
            variant: null,
            lastEntered: null,
            variation: null,
            lastExited: null,
            steps: [],
          };
          facts.set(key, f);
          const u = r.user_id;
          const entry = out.get(u) ?? { campaigns: [], canvases: [] };
          (message.kind === 'campaign' ? entry.campaigns : entry.canvases).push(f);
          out.set(u, entry);
        }
        const at = isoTime(r.last_at) as string;
        switch (r.event_type) {
          case 'received': {
            if (f.lastReceived === null || at > f.lastReceived) {
              f.lastReceived = at;
              if (r.variant_id !== null) f.variant = component(message.variants, r.variant_id);
            }
            if (r.step_id !== null) {
              const step = component(message.steps, r.step_id) as Component;
              const s = f.steps.find((x) => x.step.id === step.id);
              if (!s) f.steps.push({ step, lastReceived: at });
              else if (at > s.lastReceived) s.lastReceived = at;
            }
            break;
          }
          case 'opened':
            if (r.channel === 'email') f.openedEmail = true;
            if (r.channel === 'push') f.openedPush = true;
            break;
          case 'clicked':
            if (r.channel === 'email') f.clickedEmail = true;
            if (r.channel === 'in_app_message') f.clickedInAppMessage = true;
            break;
          case 'converted':
            f.converted = true;
            break;
          case 'control_group':
            f.inControl = true;
            break;
          case 'entered_variation':
            if (f.lastEntered === null || at > f.lastEntered) {
              f.lastEntered = at;
              f.variation = component(message.variations, r.variation_id);
            }
            break;
          case 'exited':
            if (f.lastExited === null || at > f.lastExited) f.lastExited = at;
            break;
          default:
            break;
        }
      }
      // A message shows in the lists once the user received it, entered it or was held out as control.
      for (const [u, entry] of out) {
        const keep = (f: MessageFacts) => f.lastReceived !== null || f.inControl || f.lastEntered !== null;
        entry.campaigns = entry.campaigns.filter(keep).sort(byRecent);
        entry.canvases = entry.canvases.filter(keep).sort(byRecent);
        for (const c of entry.canvases) c.steps.sort((a, b) => (a.lastReceived < b.lastReceived ? 1 : -1));
        out.set(u, entry);
      }
      return out;
    }),
  );
}

function byRecent(a: MessageFacts, b: MessageFacts): number {
  const ta = a.lastReceived ?? a.lastEntered ?? '';
  const tb = b.lastReceived ?? b.lastEntered ?? '';
  return ta < tb ? 1 : ta > tb ? -1 : refKey(a.message) < refKey(b.message) ? -1 : 1;
}

/** Campaign with more than one variant: the export then names the variant and the control group. */
export function isMultivariate(m: StoredMessage): boolean {
  return m.variants.length > 1;
}
