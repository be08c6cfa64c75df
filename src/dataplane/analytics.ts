/**
 * Message analytics (rule 7): aggregates maintained at ingestion, kept apart from the per-user rows and
 * never archived, so they read the same before and after the message's data expires.
 */
import type { Db } from '../db/knex';
import type { MessageKind, MessageRef } from '../shared/types';
import { notFound } from './errors';
import { loadMessage } from './messages';

export interface Breakdown {
  id: string;
  name: string;
  counts: Record<string, number>;
}

export interface MessageAnalytics {
  kind: MessageKind;
  id: string;
  name: string;
  totals: Record<string, number>;
  uniqueRecipients: number;
  byChannel: Record<string, Record<string, number>>;
  /** Campaigns: per variant. Canvases: per step and per variation. */
  variants?: Breakdown[];
  steps?: Breakdown[];
  variations?: Breakdown[];
  daily: { day: string; counts: Record<string, number> }[];
}

interface AggRow {
  day: string;
  event_type: string;
  variant_id: string;
  step_id: string;
  variation_id: string;
  channel: string;
  count: string | number;
}

const add = (to: Record<string, number>, key: string, n: number) => {
  to[key] = (to[key] ?? 0) + n;
};

export async function messageAnalytics(db: Db, ref: MessageRef): Promise<MessageAnalytics> {
  const message = await loadMessage(db, ref);
  if (!message) throw notFound(`no ${ref.kind} ${JSON.stringify(ref.id)}`);
  const rows = (await db('message_analytics')
    .select('day', 'event_type', 'variant_id', 'step_id', 'variation_id', 'channel', 'count')
    .where({ message_kind: ref.kind, message_id: ref.id })
    .orderBy('day')) as AggRow[];
  const unique = await db('user_message_receipts')
    .where({ message_kind: ref.kind, message_id: ref.id })
    .countDistinct<{ n: string | number }>('user_id as n')
    .first();

  const totals: Record<string, number> = {};
  const byChannel: Record<string, Record<string, number>> = {};
  const daily = new Map<string, Record<string, number>>();
  const per = {
    variant: new Map<string, Record<string, number>>(),
    step: new Map<string, Record<string, number>>(),
    variation: new Map<string, Record<string, number>>(),
  };
  for (const r of rows) {
    const n = Number(r.count);
    add(totals, r.event_type, n);
    if (r.channel) add((byChannel[r.channel] ??= {}), r.event_type, n);
    const day = String(r.day).slice(0, 10);
    add(daily.get(day) ?? (daily.set(day, {}), daily.get(day)!), r.event_type, n);
    for (const [dim, id] of [
      ['variant', r.variant_id],
      ['step', r.step_id],
      ['variation', r.variation_id],
    ] as const) {
      if (!id) continue;
      const m = per[dim];
      add(m.get(id) ?? (m.set(id, {}), m.get(id)!), r.event_type, n);
    }
  }
  const breakdown = (list: { id: string; name: string }[], m: Map<string, Record<string, number>>): Breakdown[] =>
    list.map((c) => ({ id: c.id, name: c.name, counts: m.get(c.id) ?? {} }));
  return {
    kind: ref.kind,
    id: message.id,
    name: message.name,
    totals,
    uniqueRecipients: Number(unique?.n ?? 0),
    byChannel,
    ...(ref.kind === 'campaign'
      ? { variants: breakdown(message.variants, per.variant) }
      : { steps: breakdown(message.steps, per.step), variations: breakdown(message.variations, per.variation) }),
    daily: [...daily.entries()].map(([day, counts]) => ({ day, counts })),
  };
}
