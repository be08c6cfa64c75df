import type { Db } from '../db/knex';
import { REFERENCING_AUDIENCES_LISTED, SPECIFIC_MESSAGE_FILTERS, type MessageRef, type ReferencingAudience } from '../shared/types';

/**
 * Active audiences (campaigns, Canvases, segments, Content Cards) with a retargeting filter on this
 * specific message. Filters by tag are left out on purpose: they never retain data (rule 4).
 */
export async function countActiveReferences(db: Db, ref: MessageRef): Promise<number> {
  const row = await referencing(db, ref).countDistinct<{ n: number }>('a.id as n').first();
  return Number(row?.n ?? 0);
}

/** The count, and the first REFERENCING_AUDIENCES_LISTED of those audiences by id, so an operator sees why. */
export async function findActiveReferences(db: Db, ref: MessageRef): Promise<{ count: number; audiences: ReferencingAudience[] }> {
  const [count, rows] = await Promise.all([
    countActiveReferences(db, ref),
    referencing(db, ref).distinct('a.id', 'a.type', 'a.name').orderBy('a.id').limit(REFERENCING_AUDIENCES_LISTED) as Promise<
      { id: string; type: string; name: string | null }[]
    >,
  ]);
  return { count, audiences: rows.map((r) => ({ id: r.id, type: r.type, name: r.name })) };
}

function referencing(db: Db, ref: MessageRef) {
  return db('audience_filters as f')
    .join('audiences as a', 'a.id', 'f.audience_id')
    .where({ 'f.target_kind': ref.kind, 'f.target_id': ref.id, 'a.active': true })
    .whereIn('f.filter_type', SPECIFIC_MESSAGE_FILTERS as readonly string[]);
}
