/**
 * Checks a whole batch before anything is written: shape of every event, repeated event ids inside the
 * batch, and that each event names a defined message and, where it names one, a defined variant, step
 * or variation of that message. The batch is refused whole when any event is bad.
 */
import type { Db } from '../../db/knex';
import type { MessageRef } from '../../shared/types';
import { DataPlaneError } from '../errors';
import { loadMessages, type StoredMessage } from '../messages';
import { refKey, type Component } from '../model';
import { checkEvent, type InteractionEvent } from './events';

export interface BadEvent {
  index: number;
  eventId: string | null;
  reasons: string[];
}

export class InvalidBatchError extends DataPlaneError {
  constructor(
    readonly invalid: BadEvent[],
    total: number,
  ) {
    super(
      400,
      'invalid_events',
      `${invalid.length} of ${total} events are invalid; nothing from this batch was stored. Fix or remove them and send the batch again.`,
      { invalid },
    );
  }
}

function has(components: Component[], id: string): boolean {
  return components.some((c) => c.id === id);
}

function listed(components: Component[]): string {
  return components.length === 0 ? 'none defined' : components.map((c) => c.id).join(', ');
}

function componentProblems(e: InteractionEvent, m: StoredMessage): string[] {
  const out: string[] = [];
  if (e.variantId !== undefined && !has(m.variants, e.variantId)) {
    out.push(`campaign ${JSON.stringify(m.id)} has no variant ${JSON.stringify(e.variantId)} (variants: ${listed(m.variants)})`);
  }
  if (e.stepId !== undefined && !has(m.steps, e.stepId)) {
    out.push(`Canvas ${JSON.stringify(m.id)} has no step ${JSON.stringify(e.stepId)} (steps: ${listed(m.steps)})`);
  }
  if (e.variationId !== undefined && !has(m.variations, e.variationId)) {
    out.push(`Canvas ${JSON.stringify(m.id)} has no variation ${JSON.stringify(e.variationId)} (variations: ${listed(m.variations)})`);
  }
  return out;
}

function problemsOf(e: InteractionEvent, messages: Map<string, StoredMessage>): string[] {
  const m = messages.get(refKey({ kind: e.messageKind, id: e.messageId }));
  if (!m) return [`unknown ${e.messageKind} ${JSON.stringify(e.messageId)}: define it with POST /v1/messages before sending its events`];
  return componentProblems(e, m);
}

/**
 * Message definitions seen in the last few seconds, per database: every batch names the same few
 * messages, and reading them costs four queries. Only found messages are kept (messages are never
 * deleted), and a miss or a component problem always re-reads (fresh = true) before refusing.
 */
const CACHE_MS = 5_000;
const cache = new WeakMap<Db, Map<string, { message: StoredMessage; at: number }>>();

async function definitions(db: Db, refs: readonly MessageRef[], fresh: boolean): Promise<Map<string, StoredMessage>> {
  let byKey = cache.get(db);
  if (!byKey) {
    byKey = new Map();
    cache.set(db, byKey);
  }
  const now = Date.now();
  const out = new Map<string, StoredMessage>();
  const missing: MessageRef[] = [];
  for (const r of refs) {
    const hit = fresh ? undefined : byKey.get(refKey(r));
    if (hit && now - hit.at < CACHE_MS) out.set(refKey(r), hit.message);
    else missing.push(r);
  }
  if (missing.length > 0) {
    for (const [k, m] of await loadMessages(db, missing)) {
      out.set(k, m);
      byKey.set(k, { message: m, at: now });
    }
  }
  return out;
}

/** Returns the events typed, or throws InvalidBatchError listing every bad event with its index. */
export async function validateBatch(db: Db, raw: readonly unknown[]): Promise<InteractionEvent[]> {
  const now = Date.now();
  const bad = new Map<number, BadEvent>();
  const flag = (index: number, eventId: string | null, reason: string) => {
    const entry = bad.get(index) ?? { index, eventId, reasons: [] };
    entry.reasons.push(reason);
    bad.set(index, entry);
  };
  const events: (InteractionEvent | undefined)[] = raw.map((value, index) => {
    const { problems, event } = checkEvent(value, now);
    const id =
      value !== null && typeof value === 'object' && typeof (value as { eventId?: unknown }).eventId === 'string'
        ? (value as { eventId: string }).eventId
        : null;
    for (const p of problems) flag(index, id, p);
    return event;
  });

  // Ids are exact, in MySQL (utf8mb4_bin) as here: `E1` and `e1` are two events.
  const firstIndex = new Map<string, number>();
  events.forEach((e, index) => {
    if (!e) return;
    const first = firstIndex.get(e.eventId);
    if (first === undefined) firstIndex.set(e.eventId, index);
    else flag(index, e.eventId, `eventId ${JSON.stringify(e.eventId)} repeats the event at index ${first} of this batch`);
  });

  const refs = new Map<string, MessageRef>();
  for (const e of events) if (e) refs.set(refKey({ kind: e.messageKind, id: e.messageId }), { kind: e.messageKind, id: e.messageId });
  let messages = await definitions(db, [...refs.values()], false);
  // A definition cached a moment ago may predate a variant, step or variation just added: before
  // refusing anything, look again.
  if (events.some((e) => e && problemsOf(e, messages).length > 0)) messages = await definitions(db, [...refs.values()], true);
  events.forEach((e, index) => {
    if (!e) return;
    for (const p of problemsOf(e, messages)) flag(index, e.eventId, p);
  });

  if (bad.size > 0)
    throw new InvalidBatchError(
      [...bad.values()].sort((a, b) => a.index - b.index),
      raw.length,
    );
  return events as InteractionEvent[];
}
