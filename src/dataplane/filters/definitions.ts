/**
 * The retargeting filters the data plane evaluates, and how each is checked.
 *
 * - 14 filters on one specific message and 3 by tag read the interaction rows, so they obey
 *   availability (rule 6): an expired message contributes nobody.
 * - The summary filters of rule 7 read per-user summaries that are never archived, so expiry does not
 *   change their answers.
 */
import {
  SPECIFIC_MESSAGE_FILTERS,
  TAG_FILTERS,
  type MessageKind,
  type MessageRef,
  type SpecificMessageFilter,
  type TagFilter,
} from '../../shared/types';
import { TAG_PATTERN } from '../../shared/validation';
import { MESSAGE_ID_PATTERN } from '../../shared/workflowId';
import { INSTANT_PATTERN } from '../ingest/events';
import type { EventType, SummaryChannel } from '../model';

export const SUMMARY_FILTERS = [
  'last_received_any_message',
  'last_received_email',
  'last_received_push',
  'last_received_sms',
  'last_received_webhook',
  'last_received_whatsapp',
  'last_engaged_with_message',
  'last_enrolled_in_any_control_group',
  'has_never_received_message_from_campaign_or_canvas_step',
  'clicked_alias_in_any_campaign_or_canvas_step',
  'hard_bounced',
  'marked_as_spam',
] as const;
export type SummaryFilter = (typeof SUMMARY_FILTERS)[number];

export const FILTER_TYPES = [...SPECIFIC_MESSAGE_FILTERS, ...TAG_FILTERS, ...SUMMARY_FILTERS] as const;
export type FilterType = SpecificMessageFilter | TagFilter | SummaryFilter;

type Param = 'variantId' | 'stepId' | 'variationId' | 'alias';

interface SpecificSpec {
  kind: MessageKind;
  events: readonly EventType[];
  requires: readonly Param[];
  /** "Last received ...": a time window on the latest matching event (after and/or before). */
  window?: true;
  /** Clicked/Opened: `action` narrows to one of the two. */
  action?: true;
}

export const SPECIFIC_SPECS: Record<SpecificMessageFilter, SpecificSpec> = {
  clicked_alias_in_campaign: { kind: 'campaign', events: ['clicked'], requires: ['alias'] },
  clicked_alias_in_canvas_step: { kind: 'canvas', events: ['clicked'], requires: ['stepId', 'alias'] },
  clicked_opened_campaign: { kind: 'campaign', events: ['clicked', 'opened'], requires: [], action: true },
  clicked_opened_step: { kind: 'canvas', events: ['clicked', 'opened'], requires: ['stepId'], action: true },
  converted_from_campaign: { kind: 'campaign', events: ['converted'], requires: [] },
  converted_from_canvas: { kind: 'canvas', events: ['converted'], requires: [] },
  entered_canvas_variation: { kind: 'canvas', events: ['entered_variation'], requires: ['variationId'] },
  in_campaign_control_group: { kind: 'campaign', events: ['control_group'], requires: [] },
  in_canvas_control_group: { kind: 'canvas', events: ['control_group'], requires: [] },
  last_received_message_from_specific_campaign: { kind: 'campaign', events: ['received'], requires: [], window: true },
  last_received_message_from_specific_canvas_step: { kind: 'canvas', events: ['received'], requires: ['stepId'], window: true },
  received_campaign_variant: { kind: 'campaign', events: ['received'], requires: ['variantId'] },
  received_message_from_campaign: { kind: 'campaign', events: ['received'], requires: [] },
  received_message_from_canvas_step: { kind: 'canvas', events: ['received'], requires: ['stepId'] },
};

export const TAG_SPECS: Record<TagFilter, { events: readonly EventType[]; window?: true; action?: true }> = {
  received_message_with_tag: { events: ['received'] },
  clicked_opened_with_tag: { events: ['clicked', 'opened'], action: true },
  last_received_message_with_tag: { events: ['received'], window: true },
};

/** Summary filters over a `users` time column with a window. */
export const SUMMARY_TIME_COLUMNS: Partial<Record<SummaryFilter, string>> = {
  last_received_any_message: 'last_received_at',
  last_received_email: 'last_received_email_at',
  last_received_push: 'last_received_push_at',
  last_received_sms: 'last_received_sms_at',
  last_received_webhook: 'last_received_webhook_at',
  last_received_whatsapp: 'last_received_whatsapp_at',
  last_engaged_with_message: 'last_engaged_at',
  last_enrolled_in_any_control_group: 'last_control_group_at',
};
export const SUMMARY_FLAG_COLUMNS: Partial<Record<SummaryFilter, string>> = {
  hard_bounced: 'hard_bounced_at',
  marked_as_spam: 'marked_spam_at',
};
export type { SummaryChannel };

/** A filter as sent by clients and stored with audiences. */
export interface FilterInput {
  type: string;
  messageKind?: string;
  messageId?: string;
  variantId?: string;
  stepId?: string;
  variationId?: string;
  alias?: string;
  tag?: string;
  /** Inclusive lower bound on the latest matching event (window filters). */
  after?: string;
  /** Exclusive upper bound on the latest matching event (window filters). */
  before?: string;
  action?: string;
}

export interface Window {
  after?: string;
  before?: string;
}

export type ParsedFilter =
  | ({ category: 'specific'; type: SpecificMessageFilter; target: MessageRef; events: readonly EventType[] } & Partial<
      Record<Param, string>
    > &
      Window)
  | ({ category: 'tag'; type: TagFilter; tag: string; events: readonly EventType[] } & Window)
  | ({ category: 'summary'; type: SummaryFilter; column: string; flag: boolean } & Window)
  | { category: 'summary_receipt'; type: 'has_never_received_message_from_campaign_or_canvas_step'; target: MessageRef; stepId: string }
  | { category: 'summary_alias'; type: 'clicked_alias_in_any_campaign_or_canvas_step'; alias: string };

const ID_RE = new RegExp(MESSAGE_ID_PATTERN);
const TAG_RE = new RegExp(TAG_PATTERN, 'u');
const INSTANT_RE = new RegExp(INSTANT_PATTERN);
const ALIAS_RE = /^[^\p{Cc}]{1,255}$/u;
const ALL_FIELDS: (keyof FilterInput)[] = [
  'type',
  'messageKind',
  'messageId',
  'variantId',
  'stepId',
  'variationId',
  'alias',
  'tag',
  'after',
  'before',
  'action',
];

export class InvalidFilterError extends Error {
  override name = 'InvalidFilterError';
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

const isIn = <T extends string>(list: readonly T[], v: unknown): v is T => typeof v === 'string' && (list as readonly string[]).includes(v);

/** Checks a filter and returns it in the form the evaluator and the guards use; throws InvalidFilterError. */
export function parseFilter(input: FilterInput): ParsedFilter {
  const problems: string[] = [];
  const type = input.type;
  if (!isIn(FILTER_TYPES, type))
    throw new InvalidFilterError([`type must be one of ${FILTER_TYPES.join(', ')}; got ${JSON.stringify(type)}`]);
  const allowed = new Set<keyof FilterInput>(['type']);
  const need = (field: keyof FilterInput, re: RegExp, rule: string): string => {
    allowed.add(field);
    const v = input[field];
    if (v === undefined) problems.push(`${field} is required for ${type} and ${rule}`);
    else if (typeof v !== 'string' || !re.test(v)) problems.push(`${field} ${rule}; got ${JSON.stringify(v)}`);
    return v ?? '';
  };
  const idRule = "must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit";
  const windowOf = (): Window => {
    allowed.add('after');
    allowed.add('before');
    const w: Window = {};
    for (const field of ['after', 'before'] as const) {
      const v = input[field];
      if (v === undefined) continue;
      if (typeof v !== 'string' || !INSTANT_RE.test(v) || Number.isNaN(Date.parse(v)))
        problems.push(`${field} must be an ISO-8601 instant with a time zone; got ${JSON.stringify(v)}`);
      else w[field] = new Date(v).toISOString();
    }
    if (w.after === undefined && w.before === undefined) problems.push(`${type} needs after and/or before (ISO-8601 instants)`);
    if (w.after !== undefined && w.before !== undefined && w.after >= w.before) problems.push('after must be earlier than before');
    return w;
  };
  const actionOf = (events: readonly EventType[]): readonly EventType[] => {
    allowed.add('action');
    if (input.action === undefined) return events;
    if (input.action !== 'opened' && input.action !== 'clicked') {
      problems.push(`action must be opened or clicked; got ${JSON.stringify(input.action)}`);
      return events;
    }
    return [input.action];
  };

  let parsed: ParsedFilter;
  if (isIn(SPECIFIC_MESSAGE_FILTERS, type)) {
    const spec = SPECIFIC_SPECS[type];
    const messageId = need('messageId', ID_RE, idRule);
    allowed.add('messageKind');
    if (input.messageKind !== undefined && input.messageKind !== spec.kind)
      problems.push(`${type} targets a ${spec.kind}; messageKind must be ${spec.kind} or left out`);
    const params: Partial<Record<Param, string>> = {};
    for (const p of spec.requires)
      params[p] = need(p, p === 'alias' ? ALIAS_RE : ID_RE, p === 'alias' ? 'must be 1-255 characters' : idRule);
    const events = spec.action ? actionOf(spec.events) : spec.events;
    parsed = {
      category: 'specific',
      type,
      target: { kind: spec.kind, id: messageId },
      events,
      ...params,
      ...(spec.window ? windowOf() : {}),
    };
  } else if (isIn(TAG_FILTERS, type)) {
    const spec = TAG_SPECS[type];
    const tag = need('tag', TAG_RE, "must be 1-100 letters, digits, spaces or '_', '.', ':', '/', '+', '-'");
    const events = spec.action ? actionOf(spec.events) : spec.events;
    parsed = { category: 'tag', type, tag, events, ...(spec.window ? windowOf() : {}) };
  } else if (type === 'has_never_received_message_from_campaign_or_canvas_step') {
    allowed.add('messageKind');
    if (input.messageKind !== 'campaign' && input.messageKind !== 'canvas')
      problems.push(`messageKind is required for ${type} and must be campaign or canvas`);
    const messageId = need('messageId', ID_RE, idRule);
    let stepId = '';
    if (input.messageKind === 'canvas') stepId = need('stepId', ID_RE, idRule);
    const kind: MessageKind = input.messageKind === 'canvas' ? 'canvas' : 'campaign';
    parsed = { category: 'summary_receipt', type, target: { kind, id: messageId }, stepId };
  } else if (type === 'clicked_alias_in_any_campaign_or_canvas_step') {
    parsed = { category: 'summary_alias', type, alias: need('alias', ALIAS_RE, 'must be 1-255 characters') };
  } else {
    const timeCol = SUMMARY_TIME_COLUMNS[type];
    const flagCol = SUMMARY_FLAG_COLUMNS[type];
    parsed = timeCol
      ? { category: 'summary', type, column: timeCol, flag: false, ...windowOf() }
      : { category: 'summary', type, column: flagCol ?? '', flag: true };
  }
  for (const field of ALL_FIELDS) {
    if (input[field] !== undefined && !allowed.has(field)) problems.push(`${field} does not apply to ${type}`);
  }
  if (problems.length > 0) throw new InvalidFilterError(problems);
  return parsed;
}

/** The message a filter names, if any (specific filters and "has never received"). */
export function filterTarget(f: ParsedFilter): MessageRef | null {
  return f.category === 'specific' || f.category === 'summary_receipt' ? f.target : null;
}

/** What is stored in audience_filters.params: the filter minus its type, target and tag. */
export function filterParams(input: FilterInput): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const key of ['variantId', 'stepId', 'variationId', 'alias', 'after', 'before', 'action'] as const) {
    if (input[key] !== undefined) out[key] = input[key];
  }
  return Object.keys(out).length > 0 ? out : null;
}
