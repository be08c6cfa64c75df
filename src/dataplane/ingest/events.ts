/**
 * One interaction event as POSTed to /v1/interactions, and its checks. Hand-written rather than a
 * schema per event so that a batch is checked in one pass at ingestion speed and every problem of
 * every event is reported with the event's index (the OpenAPI schema in dataPlaneSchemas.ts mirrors
 * these rules; test/dataplane/events.test.ts keeps the two in agreement).
 */
import { MESSAGE_KINDS, type MessageKind } from '../../shared/types';
import { MESSAGE_ID_PATTERN } from '../../shared/workflowId';
import { CHANNELS, EVENT_TYPES, type Channel, type EventType } from '../model';

export interface InteractionEvent {
  eventId: string;
  type: EventType;
  messageKind: MessageKind;
  messageId: string;
  userId: string;
  occurredAt: string;
  variantId?: string;
  stepId?: string;
  variationId?: string;
  alias?: string;
  channel?: Channel;
}

/** Letters, digits and `. _ : + / = -`: UUIDs, ULIDs and base64 ids fit; compared exactly (`E1` is not `e1`). */
export const EVENT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,63}$';
/** 1-64 characters, no control characters, no leading or trailing blank. */
export const USER_ID_PATTERN = '^[^\\p{Cc}\\s](?:[^\\p{Cc}]{0,62}[^\\p{Cc}\\s])?$';
export const ALIAS_PATTERN = '^[^\\p{Cc}]{1,255}$';
export const INSTANT_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$';

const EVENT_ID_RE = new RegExp(EVENT_ID_PATTERN);
const USER_ID_RE = new RegExp(USER_ID_PATTERN, 'u');
const ALIAS_RE = new RegExp(ALIAS_PATTERN, 'u');
const COMPONENT_ID_RE = new RegExp(MESSAGE_ID_PATTERN);
const INSTANT_RE = new RegExp(INSTANT_PATTERN);

const FIELDS = new Set([
  'eventId',
  'type',
  'messageKind',
  'messageId',
  'userId',
  'occurredAt',
  'variantId',
  'stepId',
  'variationId',
  'alias',
  'channel',
]);

/** Events in the past are always welcome (rule 11); more than a day ahead is a clock or unit error. */
const MAX_FUTURE_MS = 24 * 3600 * 1000;
const MIN_TIME_MS = Date.UTC(2000, 0, 1);

/** Which optional fields each event type needs, allows or refuses, per message kind. */
interface TypeRule {
  kinds: readonly MessageKind[];
  channel: 'required' | 'optional';
  variantId: 'optional' | 'forbidden';
  stepId: 'required' | 'optional' | 'forbidden';
  variationId: 'required' | 'optional' | 'forbidden';
  alias: 'optional' | 'forbidden';
}

const BOTH: readonly MessageKind[] = ['campaign', 'canvas'];

const RULE_OF: Record<EventType, (kind: MessageKind) => TypeRule> = {
  received: (k) => ({
    kinds: BOTH,
    channel: 'required',
    variantId: k === 'campaign' ? 'optional' : 'forbidden',
    stepId: k === 'canvas' ? 'required' : 'forbidden',
    variationId: k === 'canvas' ? 'optional' : 'forbidden',
    alias: 'forbidden',
  }),
  opened: (k) => ({
    kinds: BOTH,
    channel: 'required',
    variantId: k === 'campaign' ? 'optional' : 'forbidden',
    stepId: k === 'canvas' ? 'required' : 'forbidden',
    variationId: k === 'canvas' ? 'optional' : 'forbidden',
    alias: 'forbidden',
  }),
  clicked: (k) => ({
    kinds: BOTH,
    channel: 'required',
    variantId: k === 'campaign' ? 'optional' : 'forbidden',
    stepId: k === 'canvas' ? 'required' : 'forbidden',
    variationId: k === 'canvas' ? 'optional' : 'forbidden',
    alias: 'optional',
  }),
  converted: (k) => ({
    kinds: BOTH,
    channel: 'optional',
    variantId: k === 'campaign' ? 'optional' : 'forbidden',
    stepId: k === 'canvas' ? 'optional' : 'forbidden',
    variationId: k === 'canvas' ? 'optional' : 'forbidden',
    alias: 'forbidden',
  }),
  control_group: (k) => ({
    kinds: BOTH,
    channel: 'optional',
    variantId: 'forbidden',
    stepId: 'forbidden',
    variationId: k === 'canvas' ? 'optional' : 'forbidden',
    alias: 'forbidden',
  }),
  entered_variation: () => ({
    kinds: ['canvas'],
    channel: 'optional',
    variantId: 'forbidden',
    stepId: 'forbidden',
    variationId: 'required',
    alias: 'forbidden',
  }),
  exited: () => ({
    kinds: ['canvas'],
    channel: 'optional',
    variantId: 'forbidden',
    stepId: 'optional',
    variationId: 'optional',
    alias: 'forbidden',
  }),
  hard_bounced: (k) => ({
    kinds: BOTH,
    channel: 'optional',
    variantId: k === 'campaign' ? 'optional' : 'forbidden',
    stepId: k === 'canvas' ? 'optional' : 'forbidden',
    variationId: 'forbidden',
    alias: 'forbidden',
  }),
  marked_spam: (k) => ({
    kinds: BOTH,
    channel: 'optional',
    variantId: k === 'campaign' ? 'optional' : 'forbidden',
    stepId: k === 'canvas' ? 'optional' : 'forbidden',
    variationId: 'forbidden',
    alias: 'forbidden',
  }),
};

/** The rules, computed once per (type, kind): checking runs for every ingested event. */
export const TYPE_RULES = Object.fromEntries(
  EVENT_TYPES.map((t) => [t, Object.fromEntries(MESSAGE_KINDS.map((k) => [k, RULE_OF[t](k)]))]),
) as Record<EventType, Record<MessageKind, TypeRule>>;

const EVENT_TYPE_SET = new Set<string>(EVENT_TYPES);
const KIND_SET = new Set<string>(MESSAGE_KINDS);
const CHANNEL_SET = new Set<string>(CHANNELS);
/** What clients normally send; taken as it is instead of being re-formatted. */
const CANONICAL_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ID_RULE = "must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit";
const PRESENCE_FIELDS = ['variantId', 'stepId', 'variationId', 'alias'] as const;

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function requiredMissing(problems: string[], field: string, rule: string): undefined {
  problems.push(`${field} is required and ${rule}`);
  return undefined;
}

function matched(
  problems: string[],
  e: Record<string, unknown>,
  field: string,
  re: RegExp,
  rule: string,
  required: boolean,
): string | undefined {
  const v = e[field];
  if (v === undefined) return required ? requiredMissing(problems, field, rule) : undefined;
  if (typeof v === 'string' && re.test(v)) return v;
  problems.push(`${field} ${rule}; got ${quote(v)}`);
  return undefined;
}

function listed(
  problems: string[],
  e: Record<string, unknown>,
  field: string,
  set: Set<string>,
  allowed: readonly string[],
  required: boolean,
): string | undefined {
  const v = e[field];
  if (v === undefined) return required ? requiredMissing(problems, field, `must be one of ${allowed.join(', ')}`) : undefined;
  if (typeof v === 'string' && set.has(v)) return v;
  problems.push(`${field} must be one of ${allowed.join(', ')}; got ${quote(v)}`);
  return undefined;
}

function instant(problems: string[], text: string, now: number): string | undefined {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) problems.push(`occurredAt is not a valid date; got ${quote(text)}`);
  else if (ms < MIN_TIME_MS) problems.push(`occurredAt must be after 2000-01-01; got ${quote(text)}`);
  else if (ms > now + MAX_FUTURE_MS) problems.push(`occurredAt is more than a day in the future; got ${quote(text)}`);
  else return CANONICAL_INSTANT.test(text) ? text : new Date(ms).toISOString();
  return undefined;
}

/**
 * Checks one event's shape and field rules. Returns the problems (empty when the event is well formed)
 * and, when there are none, the event typed.
 */
export function checkEvent(value: unknown, now = Date.now()): { problems: string[]; event?: InteractionEvent } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { problems: ['must be a JSON object'] };
  const e = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const key in e) if (!FIELDS.has(key)) problems.push(`unknown property ${quote(key)}`);

  const eventId = matched(
    problems,
    e,
    'eventId',
    EVENT_ID_RE,
    "must be 1-64 letters, digits or '.', '_', ':', '+', '/', '=', '-', starting with a letter or digit",
    true,
  );
  const type = listed(problems, e, 'type', EVENT_TYPE_SET, EVENT_TYPES, true) as EventType | undefined;
  const messageKind = listed(problems, e, 'messageKind', KIND_SET, MESSAGE_KINDS, true) as MessageKind | undefined;
  const messageId = matched(problems, e, 'messageId', COMPONENT_ID_RE, ID_RULE, true);
  const userId = matched(
    problems,
    e,
    'userId',
    USER_ID_RE,
    'must be 1-64 characters without control characters or leading/trailing blanks',
    true,
  );
  const occurredAtText = matched(
    problems,
    e,
    'occurredAt',
    INSTANT_RE,
    'must be an ISO-8601 instant with a time zone, e.g. 2026-01-31T12:00:00Z',
    true,
  );
  const occurredAt = occurredAtText === undefined ? undefined : instant(problems, occurredAtText, now);
  const variantId = matched(problems, e, 'variantId', COMPONENT_ID_RE, ID_RULE, false);
  const stepId = matched(problems, e, 'stepId', COMPONENT_ID_RE, ID_RULE, false);
  const variationId = matched(problems, e, 'variationId', COMPONENT_ID_RE, ID_RULE, false);
  const alias = matched(problems, e, 'alias', ALIAS_RE, 'must be 1-255 characters without control characters', false);
  const channel = listed(problems, e, 'channel', CHANNEL_SET, CHANNELS, false) as Channel | undefined;

  if (type !== undefined && messageKind !== undefined) {
    const rule = TYPE_RULES[type][messageKind];
    if (!rule.kinds.includes(messageKind)) problems.push(`a ${type} event is for Canvases only, not for a ${messageKind}`);
    else {
      if (rule.channel === 'required' && e.channel === undefined)
        problems.push(`channel is required for a ${type} event (one of ${CHANNELS.join(', ')})`);
      for (const field of PRESENCE_FIELDS) {
        const need = rule[field];
        const v = e[field];
        if (need === 'required' && v === undefined) problems.push(`${field} is required for a ${type} event of a ${messageKind}`);
        else if (need === 'forbidden' && v !== undefined) problems.push(`${field} does not apply to a ${type} event of a ${messageKind}`);
      }
    }
  }

  if (problems.length > 0 || !eventId || !type || !messageKind || !messageId || !userId || !occurredAt) {
    return { problems: problems.length > 0 ? problems : ['is malformed'] };
  }
  const event: InteractionEvent = { eventId, type, messageKind, messageId, userId, occurredAt };
  if (variantId !== undefined) event.variantId = variantId;
  if (stepId !== undefined) event.stepId = stepId;
  if (variationId !== undefined) event.variationId = variationId;
  if (alias !== undefined) event.alias = alias;
  if (channel !== undefined) event.channel = channel;
  return { problems, event };
}
