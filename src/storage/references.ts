import type { Db } from '../db/knex';
import { SPECIFIC_MESSAGE_FILTERS, type MessageRef } from '../shared/types';

/**
 * Active audiences (campaigns, Canvases, segments, Content Cards) with a retargeting filter on this
 * specific message. Filters by tag are left out on purpose: they never retain data (rule 4).
 */
export async function countActiveReferences(db: Db, ref: MessageRef): Promise<number> {
  const row = await db('audience_filters as f')
    .join('audiences as a', 'a.id', 'f.audience_id')
    .where({ 'f.target_kind': ref.kind, 'f.target_id': ref.id, 'a.active': true })
    .whereIn('f.filter_type', SPECIFIC_MESSAGE_FILTERS as readonly string[])
    .countDistinct<{ n: number }>('a.id as n')
    .first();
  return Number(row?.n ?? 0);
}
