/**
 * Rule 9: an audience (the targeting of a campaign, Canvas or Content Card) cannot be activated,
 * resumed or unarchived while one of its filters, or a filter of a segment it uses, targets a message
 * whose interaction data is not available. The refusals use the exact words users know.
 */
import type { Db } from '../db/knex';
import { SPECIFIC_MESSAGE_FILTERS, type AudienceType, type MessageKind } from '../shared/types';
import { refKey } from './model';
import { availabilityOf } from './sql';

export const GUARD_MESSAGES = {
  canvas: (name: string) =>
    `Can't resume ${name} because it is using filters or segments that have expired data. Remove these and try again.`,
  canvases:
    "Can't resume Canvases because at least one Canvas is using filters or segments that have expired data. Remove these and try again.",
  campaigns: "You can't resume these Campaigns. One or more Campaigns include expired filters.",
  contentCards: "You can't unarchive these Cards. One or more Cards include expired filters.",
} as const;

/** The words for refusing to activate these audiences (all of one type); null for segments. */
export function guardMessage(type: AudienceType, names: readonly string[]): string | null {
  switch (type) {
    case 'canvas':
      return names.length === 1 ? GUARD_MESSAGES.canvas(names[0]) : GUARD_MESSAGES.canvases;
    case 'campaign':
      return GUARD_MESSAGES.campaigns;
    case 'content_card':
      return GUARD_MESSAGES.contentCards;
    case 'segment':
      return null;
  }
}

export interface AudienceUse {
  audienceId: string;
  /** Specific-message filters of the audience itself. */
  targets: { kind: MessageKind; id: string }[];
  segmentIds: string[];
}

export interface ExpiredUse {
  audienceId: string;
  messageKind: MessageKind;
  messageId: string;
  state: string;
  /** Set when the filter belongs to a segment the audience uses. */
  segmentId?: string;
}

/**
 * Which of the given audiences use unavailable data, directly or through their segments. Filters by
 * tag are not counted: they never retain data and simply leave expired messages out (rule 4).
 */
export async function expiredUses(db: Db, audiences: readonly AudienceUse[]): Promise<ExpiredUse[]> {
  const segmentIds = [...new Set(audiences.flatMap((a) => a.segmentIds))];
  const segmentFilters = segmentIds.length
    ? ((await db('audience_filters')
        .select('audience_id', 'target_kind', 'target_id')
        .whereIn('audience_id', segmentIds)
        .whereIn('filter_type', SPECIFIC_MESSAGE_FILTERS as readonly string[])) as {
        audience_id: string;
        target_kind: MessageKind;
        target_id: string;
      }[])
    : [];
  const refs = [...audiences.flatMap((a) => a.targets), ...segmentFilters.map((f) => ({ kind: f.target_kind, id: f.target_id }))];
  const avail = await availabilityOf(db, refs);
  const out: ExpiredUse[] = [];
  for (const a of audiences) {
    for (const t of a.targets) {
      const s = avail.get(refKey(t));
      if (s && !s.available) out.push({ audienceId: a.audienceId, messageKind: t.kind, messageId: t.id, state: s.state });
    }
    for (const f of segmentFilters) {
      if (!a.segmentIds.includes(f.audience_id)) continue;
      const s = avail.get(refKey({ kind: f.target_kind, id: f.target_id }));
      if (s && !s.available)
        out.push({
          audienceId: a.audienceId,
          messageKind: f.target_kind,
          messageId: f.target_id,
          state: s.state,
          segmentId: f.audience_id,
        });
    }
  }
  return out;
}
