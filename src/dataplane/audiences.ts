/**
 * Audiences — segments, and the targeting of campaigns, Canvases and Content Cards — with their
 * retargeting filters. Saving one checks every filter, refuses filters on unknown or legacy-purged
 * messages, applies the rule-9 guard when the audience is (or stays) active, and afterwards signals
 * `referencesChanged` to every message whose set of active references changed.
 */
import type { Db } from '../db/knex';
import { AUDIENCE_TYPES, SPECIFIC_MESSAGE_FILTERS, type AudienceType, type MessageKind, type MessageRef } from '../shared/types';
import { badRequest, conflict, notFound } from './errors';
import { filterParams, filterTarget, InvalidFilterError, parseFilter, type FilterInput, type ParsedFilter } from './filters/definitions';
import { expiredUses, guardMessage, type AudienceUse, type ExpiredUse } from './guards';
import { signalReferencesChanged, type DataPlaneLifecycle, type SignalReport } from './lifecyclePort';
import { loadMessages } from './messages';
import { refKey } from './model';

export interface AudienceInput {
  type: AudienceType;
  name: string;
  active: boolean;
  /** Campaign and Canvas audiences: the message they target people for. */
  messageId?: string;
  filters: FilterInput[];
  segmentIds?: string[];
}

export interface Audience extends AudienceInput {
  id: string;
  segmentIds: string[];
}

export interface SavedAudience {
  audience: Audience;
  references: SignalReport;
}

interface AudienceRow {
  id: string;
  type: AudienceType;
  name: string | null;
  active: number | boolean;
  message_id: string | null;
}

interface FilterRow {
  audience_id: string;
  filter_type: string;
  target_kind: MessageKind | null;
  target_id: string | null;
  tag: string | null;
  params: string | null;
}

const isSpecific = (type: string) => (SPECIFIC_MESSAGE_FILTERS as readonly string[]).includes(type);

function rowToFilter(f: FilterRow): FilterInput {
  const params = f.params ? (JSON.parse(f.params) as Record<string, string>) : {};
  const out: FilterInput = { type: f.filter_type, ...params };
  if (f.target_id !== null) {
    out.messageId = f.target_id;
    if (f.filter_type === 'has_never_received_message_from_campaign_or_canvas_step') out.messageKind = f.target_kind ?? undefined;
  }
  if (f.tag !== null) out.tag = f.tag;
  return out;
}

/** The given audiences that exist, keyed by id; ids are exact (`Seg` and `seg` are two audiences). */
export async function loadAudiences(db: Db, ids: readonly string[]): Promise<Map<string, Audience>> {
  const out = new Map<string, Audience>();
  if (ids.length === 0) return out;
  const rows = (await db('audiences')
    .select('id', 'type', 'name', 'active', 'message_id')
    .whereIn('id', ids as string[])) as AudienceRow[];
  const filters = (await db('audience_filters')
    .select('audience_id', 'filter_type', 'target_kind', 'target_id', 'tag', 'params')
    .whereIn('audience_id', ids as string[])
    .orderBy(['audience_id', 'position', 'id'])) as FilterRow[];
  const segments = (await db('audience_segments')
    .select('audience_id', 'segment_id')
    .whereIn('audience_id', ids as string[])
    .orderBy('segment_id')) as {
    audience_id: string;
    segment_id: string;
  }[];
  for (const r of rows) {
    out.set(r.id, {
      id: r.id,
      type: r.type,
      name: r.name ?? r.id,
      active: Boolean(Number(r.active)),
      ...(r.message_id === null ? {} : { messageId: r.message_id }),
      filters: filters.filter((f) => f.audience_id === r.id).map(rowToFilter),
      segmentIds: segments.filter((s) => s.audience_id === r.id).map((s) => s.segment_id),
    });
  }
  return out;
}

/** Messages an audience actively references, in the sense of rule 3 (what the actors count). */
export function activeTargets(a: Pick<Audience, 'active' | 'filters'> | undefined): MessageRef[] {
  if (!a || !a.active) return [];
  const out = new Map<string, MessageRef>();
  for (const f of a.filters) {
    if (!isSpecific(f.type) || f.messageId === undefined) continue;
    const parsed = parseFilter(f);
    const t = filterTarget(parsed);
    if (t) out.set(refKey(t), t);
  }
  return [...out.values()];
}

/** Messages whose active-reference count may differ between the two versions of an audience. */
export function changedTargets(before: Audience | undefined, after: Pick<Audience, 'active' | 'filters'> | undefined): MessageRef[] {
  const b = new Map(activeTargets(before).map((r) => [refKey(r), r]));
  const a = new Map(activeTargets(after).map((r) => [refKey(r), r]));
  const out: MessageRef[] = [];
  for (const [k, r] of b) if (!a.has(k)) out.push(r);
  for (const [k, r] of a) if (!b.has(k)) out.push(r);
  return out;
}

function audienceUse(id: string, filters: readonly ParsedFilter[], segmentIds: readonly string[]): AudienceUse {
  return {
    audienceId: id,
    targets: filters.flatMap((f) => (f.category === 'specific' ? [f.target] : [])),
    segmentIds: [...segmentIds],
  };
}

export function refuseExpired(type: AudienceType, names: readonly string[], uses: readonly ExpiredUse[]): void {
  const message = guardMessage(type, names);
  if (message !== null && uses.length > 0) throw conflict('expired_filters', message, { expiredFilters: uses });
}

/** Checks the filters and what they name; returns them parsed. */
async function checkFilters(db: Db, filters: readonly FilterInput[]): Promise<ParsedFilter[]> {
  const problems: string[] = [];
  const parsed: ParsedFilter[] = [];
  filters.forEach((f, i) => {
    try {
      parsed.push(parseFilter(f));
    } catch (err) {
      if (!(err instanceof InvalidFilterError)) throw err;
      for (const p of err.problems) problems.push(`filters[${i}]: ${p}`);
    }
  });
  if (problems.length > 0) throw badRequest(problems.join('. '), { field: 'filters' });

  const targets = parsed.map(filterTarget);
  const refs = targets.filter((t): t is MessageRef => t !== null);
  const known = await loadMessages(db, refs);
  targets.forEach((t, i) => {
    if (t && !known.has(refKey(t))) problems.push(`filters[${i}]: unknown ${t.kind} ${JSON.stringify(t.id)}`);
  });
  if (problems.length > 0) throw badRequest(problems.join('. '), { field: 'filters' });
  const purged = targets.findIndex((t) => t !== null && known.get(refKey(t))?.legacyPurged);
  if (purged >= 0) {
    const t = targets[purged] as MessageRef;
    throw conflict(
      'legacy_purged',
      `filters[${purged}]: ${t.kind === 'canvas' ? 'Canvas' : 'campaign'} ${JSON.stringify(t.id)} cannot be used in retargeting filters: its interaction data was deleted under the former retention policy`,
      { messageKind: t.kind, messageId: t.id },
    );
  }
  return parsed;
}

/** The name rule 9 uses for a Canvas: the Canvas's own name when the audience is linked to it. */
async function displayNames(db: Db, audiences: readonly Pick<Audience, 'type' | 'name' | 'messageId'>[]): Promise<string[]> {
  const refs = audiences.flatMap((a) =>
    a.messageId && (a.type === 'campaign' || a.type === 'canvas') ? [{ kind: a.type, id: a.messageId }] : [],
  );
  const messages = await loadMessages(db, refs);
  return audiences.map(
    (a) =>
      (a.messageId && (a.type === 'campaign' || a.type === 'canvas')
        ? messages.get(refKey({ kind: a.type, id: a.messageId }))?.name
        : undefined) ?? a.name,
  );
}

export async function putAudience(db: Db, lifecycle: DataPlaneLifecycle, id: string, input: AudienceInput): Promise<SavedAudience> {
  if (!(AUDIENCE_TYPES as readonly string[]).includes(input.type))
    throw badRequest(`type must be one of ${AUDIENCE_TYPES.join(', ')}`, { field: 'type' });
  const segmentIds = [...new Set(input.segmentIds ?? [])];
  if (input.messageId !== undefined) {
    if (input.type !== 'campaign' && input.type !== 'canvas')
      throw badRequest(`messageId applies to campaign and canvas audiences only, not to a ${input.type}`, { field: 'messageId' });
    if (!(await loadMessages(db, [{ kind: input.type, id: input.messageId }])).size) {
      throw badRequest(`unknown ${input.type} ${JSON.stringify(input.messageId)}`, { field: 'messageId' });
    }
  }
  const parsed = await checkFilters(db, input.filters);
  if (segmentIds.length > 0) {
    if (input.type === 'segment') throw badRequest('a segment cannot use other segments', { field: 'segmentIds' });
    const segs = await loadAudiences(db, segmentIds);
    const bad = segmentIds.filter((s) => segs.get(s)?.type !== 'segment');
    if (bad.length > 0)
      throw badRequest(
        `segmentIds: ${bad.map((s) => JSON.stringify(s)).join(', ')} ${bad.length > 1 ? 'are not segments' : 'is not a segment'}`,
        { field: 'segmentIds' },
      );
  }

  const before = await db.transaction(async (trx) => {
    // Locks the audience row so that two concurrent saves of it compute their reference changes in turn.
    await trx.raw('SELECT id FROM audiences WHERE id = ? FOR UPDATE', [id]);
    const previous = (await loadAudiences(trx, [id])).get(id);
    if (input.active) {
      const uses = await expiredUses(trx, [audienceUse(id, parsed, segmentIds)]);
      refuseExpired(input.type, await displayNames(trx, [input]), uses);
    }
    await trx('audiences')
      .insert({ id, type: input.type, name: input.name, active: input.active, message_id: input.messageId ?? null })
      .onConflict('id')
      .merge({
        type: input.type,
        name: input.name,
        active: input.active,
        message_id: input.messageId ?? null,
        updated_at: trx.raw('CURRENT_TIMESTAMP(3)'),
      } as never);
    await trx('audience_filters').where({ audience_id: id }).delete();
    if (input.filters.length > 0) {
      await trx('audience_filters').insert(
        input.filters.map((f, position) => {
          const p = parsed[position];
          const target = filterTarget(p);
          return {
            audience_id: id,
            filter_type: p.type,
            target_kind: target?.kind ?? null,
            target_id: target?.id ?? null,
            tag: p.category === 'tag' ? p.tag : null,
            params: (() => {
              const params = filterParams(f);
              return params ? JSON.stringify(params) : null;
            })(),
            position,
          };
        }),
      );
    }
    await trx('audience_segments').where({ audience_id: id }).delete();
    if (segmentIds.length > 0) await trx('audience_segments').insert(segmentIds.map((segment_id) => ({ audience_id: id, segment_id })));
    return previous;
  });

  const saved = (await loadAudiences(db, [id])).get(id) as Audience;
  const references = await signalReferencesChanged(lifecycle, changedTargets(before, saved));
  return { audience: saved, references };
}

/**
 * Activates several audiences of one type at once (resume Canvases or campaigns, unarchive Content
 * Cards): all or none, refused with the rule-9 words when any of them uses expired data.
 */
export async function activateAudiences(
  db: Db,
  lifecycle: DataPlaneLifecycle,
  ids: readonly string[],
): Promise<{ audiences: Audience[]; references: SignalReport }> {
  const unique = [...new Set(ids)];
  const result = await db.transaction(async (trx) => {
    await trx('audiences').whereIn('id', unique).forUpdate().select('id');
    const found = await loadAudiences(trx, unique);
    const missing = unique.filter((i) => !found.has(i));
    if (missing.length > 0) throw notFound(`no audience ${missing.map((m) => JSON.stringify(m)).join(', ')}`);
    const list = unique.map((i) => found.get(i) as Audience);
    const types = [...new Set(list.map((a) => a.type))];
    if (types.length > 1) throw badRequest(`activate audiences of one type at a time; got ${types.join(', ')}`, { field: 'ids' });
    const uses = await expiredUses(
      trx,
      list.map((a) =>
        audienceUse(
          a.id,
          a.filters.map((f) => parseFilter(f)),
          a.segmentIds,
        ),
      ),
    );
    refuseExpired(types[0], await displayNames(trx, list), uses);
    await trx('audiences')
      .whereIn('id', unique)
      .update({ active: true, updated_at: trx.raw('CURRENT_TIMESTAMP(3)') });
    return list;
  });
  const changed = new Map<string, MessageRef>();
  for (const a of result) for (const r of changedTargets(a, { ...a, active: true })) changed.set(refKey(r), r);
  const references = await signalReferencesChanged(lifecycle, [...changed.values()]);
  return { audiences: result.map((a) => ({ ...a, active: true })), references };
}

export async function getAudience(db: Db, id: string): Promise<Audience> {
  const a = (await loadAudiences(db, [id])).get(id);
  if (!a) throw notFound(`no audience ${JSON.stringify(id)}`);
  return a;
}
