/**
 * What one batch of new events changes in the aggregates that are never archived: per-user summaries
 * (rule 7 filters), per-(user, message, step) receipts, the (user, message) pairs the profile lists
 * start from, clicked aliases and per-message analytics.
 * Computed in memory so each table gets one multi-row upsert per batch, rows sorted by key so that
 * concurrent batches lock shared rows in the same order.
 */
import type { InteractionEvent } from './events';
import { SUMMARY_CHANNELS } from '../model';

export const USER_TIME_COLUMNS = [
  'last_received_at',
  'last_received_email_at',
  'last_received_push_at',
  'last_received_sms_at',
  'last_received_webhook_at',
  'last_received_whatsapp_at',
  'last_engaged_at',
  'last_control_group_at',
  'hard_bounced_at',
  'marked_spam_at',
] as const;
type UserTimeColumn = (typeof USER_TIME_COLUMNS)[number];

export interface UserDelta {
  id: string;
  firstSeenAt: string;
  times: Partial<Record<UserTimeColumn, string>>;
}

export interface ReceiptDelta {
  messageKind: string;
  messageId: string;
  stepId: string;
  userId: string;
  first: string;
  last: string;
}

/** A user has interaction rows for a message (`user_messages`). */
export interface UserMessageDelta {
  userId: string;
  messageKind: string;
  messageId: string;
}

export interface AliasDelta {
  alias: string;
  userId: string;
  last: string;
}

export interface AnalyticsDelta {
  messageKind: string;
  messageId: string;
  day: string;
  eventType: string;
  variantId: string;
  stepId: string;
  variationId: string;
  channel: string;
  count: number;
}

export interface BatchDeltas {
  users: UserDelta[];
  receipts: ReceiptDelta[];
  userMessages: UserMessageDelta[];
  aliases: AliasDelta[];
  analytics: AnalyticsDelta[];
}

/** occurredAt is already normalised to `YYYY-MM-DDTHH:MM:SS.mmmZ`, so text order is time order. */
const later = (a: string | undefined, b: string) => (a === undefined || b > a ? b : a);
const earlier = (a: string | undefined, b: string) => (a === undefined || b < a ? b : a);

function touch(u: UserDelta, col: UserTimeColumn, at: string): void {
  u.times[col] = later(u.times[col], at);
}

function byKey<T>(map: Map<string, T>): T[] {
  // The default sort compares the (string) keys natively, much faster than a comparator function.
  return [...map.keys()].sort().map((k) => map.get(k) as T);
}

const isSummaryChannel = (c: string | undefined): c is (typeof SUMMARY_CHANNELS)[number] =>
  c !== undefined && (SUMMARY_CHANNELS as readonly string[]).includes(c);

export function batchDeltas(events: readonly InteractionEvent[]): BatchDeltas {
  const users = new Map<string, UserDelta>();
  const receipts = new Map<string, ReceiptDelta>();
  const userMessages = new Map<string, UserMessageDelta>();
  const aliases = new Map<string, AliasDelta>();
  const analytics = new Map<string, AnalyticsDelta>();

  for (const e of events) {
    const at = e.occurredAt;
    // Ids are exact, as the database compares them (migration 007); aliases are not ids and are
    // compared case-insensitively there, so their key is lower-cased.
    const uKey = e.userId;
    let u = users.get(uKey);
    if (!u) users.set(uKey, (u = { id: e.userId, firstSeenAt: at, times: {} }));
    u.firstSeenAt = earlier(u.firstSeenAt, at);
    const umKey = `${uKey}\u0000${e.messageKind}\u0000${e.messageId}`;
    if (!userMessages.has(umKey)) userMessages.set(umKey, { userId: e.userId, messageKind: e.messageKind, messageId: e.messageId });

    switch (e.type) {
      case 'received': {
        touch(u, 'last_received_at', at);
        if (isSummaryChannel(e.channel)) touch(u, `last_received_${e.channel}_at`, at);
        const stepId = e.stepId ?? '';
        const rKey = `${e.messageKind}\u0000${e.messageId}\u0000${stepId}\u0000${uKey}`;
        const r = receipts.get(rKey);
        if (r) {
          r.first = earlier(r.first, at);
          r.last = later(r.last, at);
        } else {
          receipts.set(rKey, { messageKind: e.messageKind, messageId: e.messageId, stepId, userId: e.userId, first: at, last: at });
        }
        break;
      }
      case 'opened':
        touch(u, 'last_engaged_at', at);
        break;
      case 'clicked':
        touch(u, 'last_engaged_at', at);
        if (e.alias !== undefined) {
          const aKey = `${e.alias.toLowerCase()}\u0000${uKey}`;
          const a = aliases.get(aKey);
          if (a) a.last = later(a.last, at);
          else aliases.set(aKey, { alias: e.alias, userId: e.userId, last: at });
        }
        break;
      case 'control_group':
        touch(u, 'last_control_group_at', at);
        break;
      case 'hard_bounced':
        touch(u, 'hard_bounced_at', at);
        break;
      case 'marked_spam':
        touch(u, 'marked_spam_at', at);
        break;
      default:
        break;
    }

    const day = at.slice(0, 10);
    const aggKey = `${e.messageKind}\u0000${e.messageId}\u0000${day}\u0000${e.type}\u0000${e.variantId ?? ''}\u0000${e.stepId ?? ''}\u0000${e.variationId ?? ''}\u0000${e.channel ?? ''}`;
    const agg = analytics.get(aggKey);
    if (agg) agg.count += 1;
    else
      analytics.set(aggKey, {
        messageKind: e.messageKind,
        messageId: e.messageId,
        day,
        eventType: e.type,
        variantId: e.variantId ?? '',
        stepId: e.stepId ?? '',
        variationId: e.variationId ?? '',
        channel: e.channel ?? '',
        count: 1,
      });
  }
  return {
    users: byKey(users),
    receipts: byKey(receipts),
    userMessages: byKey(userMessages),
    aliases: byKey(aliases),
    analytics: byKey(analytics),
  };
}
