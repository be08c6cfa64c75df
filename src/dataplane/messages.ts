/** Campaign and Canvas definitions in MySQL: name, tags, status, variants, steps and variations. */
import type { Db } from '../db/knex';
import type { MessageKind, MessageRef } from '../shared/types';
import { COMPONENTS_OF, refKey, type Component, type ComponentType, type MessageDefinition } from './model';

export interface StoredMessage extends MessageDefinition {
  /** Data deleted under the former retention policy (rule 10): unusable in retargeting filters. */
  legacyPurged: boolean;
}

const COMPONENT_FIELD: Record<ComponentType, 'variants' | 'steps' | 'variations'> = {
  variant: 'variants',
  step: 'steps',
  variation: 'variations',
};

function whereRefs(refs: readonly MessageRef[], kindCol: string, idCol: string) {
  return (q: import('knex').Knex.QueryBuilder) => {
    for (const r of refs)
      q.orWhere((w) => {
        w.where(kindCol, r.kind).andWhere(idCol, r.id);
      });
  };
}

/** The given messages that exist, keyed by refKey. */
export async function loadMessages(db: Db, refs: readonly MessageRef[]): Promise<Map<string, StoredMessage>> {
  const out = new Map<string, StoredMessage>();
  if (refs.length === 0) return out;
  const rows = (await db('messages')
    .select('kind', 'id', 'name', 'status')
    .where(whereRefs(refs, 'kind', 'id'))) as {
    kind: MessageKind;
    id: string;
    name: string | null;
    status: string;
  }[];
  for (const r of rows) {
    out.set(refKey(r), {
      kind: r.kind,
      id: r.id,
      name: r.name ?? r.id,
      status: r.status === 'stopped' || r.status === 'archived' ? r.status : 'active',
      tags: [],
      variants: [],
      steps: [],
      variations: [],
      legacyPurged: false,
    });
  }
  if (out.size === 0) return out;
  const found = [...out.values()];
  const tags = (await db('message_tags')
    .select('kind', 'message_id', 'tag')
    .where(whereRefs(found, 'kind', 'message_id'))
    .orderBy('tag')) as {
    kind: MessageKind;
    message_id: string;
    tag: string;
  }[];
  for (const t of tags) out.get(refKey({ kind: t.kind, id: t.message_id }))?.tags.push(t.tag);
  const comps = (await db('message_components')
    .select('kind', 'message_id', 'component_type', 'component_id', 'name')
    .where(whereRefs(found, 'kind', 'message_id'))
    .orderBy('position')) as { kind: MessageKind; message_id: string; component_type: ComponentType; component_id: string; name: string }[];
  for (const c of comps) {
    const m = out.get(refKey({ kind: c.kind, id: c.message_id }));
    m?.[COMPONENT_FIELD[c.component_type]].push({ id: c.component_id, name: c.name });
  }
  const purged = (await db('legacy_purged_messages')
    .select('kind', 'message_id')
    .where(whereRefs(found, 'kind', 'message_id'))) as {
    kind: MessageKind;
    message_id: string;
  }[];
  for (const p of purged) {
    const m = out.get(refKey({ kind: p.kind, id: p.message_id }));
    if (m) m.legacyPurged = true;
  }
  return out;
}

export async function loadMessage(db: Db, ref: MessageRef): Promise<StoredMessage | null> {
  return (await loadMessages(db, [ref])).get(refKey(ref)) ?? null;
}

/** Legacy purge marks of the given messages, whether or not the messages themselves are defined. */
export async function purgedAmong(db: Db, refs: readonly MessageRef[]): Promise<Set<string>> {
  if (refs.length === 0) return new Set();
  const rows = (await db('legacy_purged_messages')
    .select('kind', 'message_id')
    .where(whereRefs(refs, 'kind', 'message_id'))) as {
    kind: MessageKind;
    message_id: string;
  }[];
  return new Set(rows.map((r) => refKey({ kind: r.kind, id: r.message_id })));
}

/** Inserts or replaces the whole definition (within the caller's transaction). */
export async function writeMessage(trx: Db, def: MessageDefinition): Promise<void> {
  await trx('messages')
    .insert({ kind: def.kind, id: def.id, name: def.name, status: def.status })
    .onConflict(['kind', 'id'])
    .merge({ name: def.name, status: def.status, updated_at: trx.raw('CURRENT_TIMESTAMP(3)') } as never);
  await trx('message_tags').where({ kind: def.kind, message_id: def.id }).delete();
  if (def.tags.length > 0) await trx('message_tags').insert(def.tags.map((tag) => ({ kind: def.kind, message_id: def.id, tag })));
  await trx('message_components').where({ kind: def.kind, message_id: def.id }).delete();
  const rows = COMPONENTS_OF[def.kind].flatMap((type) =>
    def[COMPONENT_FIELD[type]].map((c: Component, position) => ({
      kind: def.kind,
      message_id: def.id,
      component_type: type,
      component_id: c.id,
      name: c.name,
      position,
    })),
  );
  if (rows.length > 0) await trx('message_components').insert(rows);
}

/**
 * Marks a message whose interaction data was deleted under the former policy (no sends for 25
 * calendar months and no retargeting use). Used by the one-off import of legacy marks.
 */
export async function markLegacyPurged(db: Db, ref: MessageRef, purgedAt: string, reason: string | null = null): Promise<void> {
  await db('legacy_purged_messages')
    .insert({ kind: ref.kind, message_id: ref.id, purged_at: purgedAt.slice(0, 23).replace('T', ' '), reason })
    .onConflict(['kind', 'message_id'])
    .ignore();
}
