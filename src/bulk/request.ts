/**
 * Validation and identity of a bulk-restore request. The request id (and so the workflow ID) is
 * derived from the normalised request unless the caller names one, so sending the same request twice
 * reaches the same workflow instead of restoring, and e-mailing, twice.
 */
import { createHash } from 'node:crypto';
import { MESSAGE_KINDS, type MessageKind, type MessageRef } from '../shared/types';
import { assertEmail, assertRequestId, assertTag, InvalidInputError } from '../shared/validation';
import { isMessageKind, messageRef } from '../shared/workflowId';
import {
  BULK_RESTORE_WORKFLOW_ID_PREFIX,
  DEFAULT_BULK_TUNING,
  MAX_BULK_CONCURRENCY,
  MAX_BULK_IDS,
  refText,
  type BulkRestoreTuning,
  type BulkSelection,
} from './types';

/** A bulk-restore request as callers write it; everything is checked by normaliseBulkRequest. */
export interface BulkRestoreRequest {
  requestedBy: string;
  /** Every expired message with this tag... */
  tag?: string;
  /** ...of this kind only (default: campaigns and Canvases). */
  kind?: MessageKind;
  /** Or these messages. */
  refs?: readonly MessageRef[];
  /** Names the request explicitly instead of deriving its id from the content. */
  requestId?: string;
  tuning?: Partial<BulkRestoreTuning>;
  /** Called with a signed POST when the request completes; already checked against the callback policy. */
  callbackUrl?: string;
}

export interface NormalisedBulkRequest {
  selection: BulkSelection;
  requestedBy: string;
  requestId: string;
  /** Hash of the normalised selection and requester: tells whether an existing request is this one. */
  fingerprint: string;
  tuning: BulkRestoreTuning;
  callbackUrl?: string;
}

function positiveInt(value: unknown, field: string, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidInputError(`${field} must be a whole number from 1 to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function normaliseSelection(request: Pick<BulkRestoreRequest, 'tag' | 'kind' | 'refs'>): BulkSelection {
  const hasTag = request.tag !== undefined;
  const hasRefs = request.refs !== undefined && request.refs.length > 0;
  if (hasTag === hasRefs) throw new InvalidInputError('give either a tag or a list of messages (not both, not neither)');
  if (hasTag) {
    const tag = assertTag(request.tag);
    if (request.kind !== undefined && !isMessageKind(request.kind)) {
      throw new InvalidInputError(`kind must be one of ${MESSAGE_KINDS.join(', ')}, got ${JSON.stringify(request.kind)}`);
    }
    return { by: 'tag', tag, kinds: request.kind ? [request.kind] : [...MESSAGE_KINDS] };
  }
  if (request.kind !== undefined) throw new InvalidInputError('kind only applies to a restore by tag');
  const refs = request.refs ?? [];
  if (refs.length > MAX_BULK_IDS) throw new InvalidInputError(`at most ${MAX_BULK_IDS} messages per request, got ${refs.length}`);
  const seen = new Map<string, MessageRef>();
  for (const r of refs) {
    const ref = messageRef(r.kind, r.id);
    seen.set(refText(ref), ref);
  }
  // Sorted and without duplicates: the same set of messages is the same request, whatever the order.
  const unique = [...seen.values()].sort((a, b) => (a.kind === b.kind ? cmp(a.id, b.id) : cmp(a.kind, b.kind)));
  return { by: 'ids', refs: unique };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Tags are matched case-insensitively by MySQL's collation, and e-mail addresses are in practice, so
 * both are lower-cased for the identity (never for what is stored or shown).
 */
export function requestFingerprint(selection: BulkSelection, requestedBy: string): string {
  const identity =
    selection.by === 'tag'
      ? {
          by: 'tag',
          tag: selection.tag.normalize('NFC').toLowerCase(),
          kinds: [...selection.kinds].sort(),
          requestedBy: requestedBy.toLowerCase(),
        }
      : { by: 'ids', refs: selection.refs.map(refText), requestedBy: requestedBy.toLowerCase() };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

/** `br-` and 20 hex digits of the fingerprint: short enough to type into `bulk status`. */
export function derivedRequestId(fingerprint: string): string {
  return `br-${fingerprint.slice(0, 20)}`;
}

export function normaliseTuning(tuning: Partial<BulkRestoreTuning> = {}): BulkRestoreTuning {
  return {
    concurrency:
      tuning.concurrency === undefined
        ? DEFAULT_BULK_TUNING.concurrency
        : positiveInt(tuning.concurrency, 'concurrency', MAX_BULK_CONCURRENCY),
    failAfterAttempts:
      tuning.failAfterAttempts === undefined
        ? DEFAULT_BULK_TUNING.failAfterAttempts
        : positiveInt(tuning.failAfterAttempts, 'failAfterAttempts', 1_000),
    messageTimeoutMs:
      tuning.messageTimeoutMs === undefined
        ? DEFAULT_BULK_TUNING.messageTimeoutMs
        : positiveInt(tuning.messageTimeoutMs, 'messageTimeoutMs', 7 * 24 * 3_600_000),
  };
}

export function normaliseBulkRequest(request: BulkRestoreRequest): NormalisedBulkRequest {
  const requestedBy = assertEmail(request.requestedBy);
  const selection = normaliseSelection(request);
  const fingerprint = requestFingerprint(selection, requestedBy);
  const requestId = request.requestId === undefined ? derivedRequestId(fingerprint) : assertRequestId(request.requestId);
  return {
    selection,
    requestedBy,
    requestId,
    fingerprint,
    tuning: normaliseTuning(request.tuning),
    ...(request.callbackUrl ? { callbackUrl: request.callbackUrl } : {}),
  };
}

/** Accepts a request id or the whole workflow ID, as an operator may copy either from the Web UI. */
export function parseBulkRequestId(text: string): string {
  const id = text.startsWith(BULK_RESTORE_WORKFLOW_ID_PREFIX) ? text.slice(BULK_RESTORE_WORKFLOW_ID_PREFIX.length) : text;
  return assertRequestId(id);
}
