/**
 * Types and pure helpers of bulk restores, shared by the bulk-restore workflow, its activities, the
 * client, the API and the CLI. No I/O and no Node modules: the workflow bundle imports this file.
 */
import type { MessageKind, MessageRef } from '../shared/types';

export const BULK_RESTORE_WORKFLOW_TYPE = 'interactionDataBulkRestore';
export const BULK_PREVIEW_WORKFLOW_TYPE = 'interactionDataBulkRestorePreview';
export const BULK_RESTORE_WORKFLOW_ID_PREFIX = 'interaction-data-bulk-restore:';
export const BULK_PREVIEW_WORKFLOW_ID_PREFIX = 'interaction-data-bulk-preview:';

/** Messages restored at once when the caller does not say: enough to keep a worker busy, gentle on MySQL. */
export const DEFAULT_BULK_CONCURRENCY = 20;
export const MAX_BULK_CONCURRENCY = 100;
/** Upper bound of an id list: the list travels in the workflow's first input (2 MB payload limit). */
export const MAX_BULK_IDS = 10_000;
/** Failures kept in the workflow's state for the progress query; all of them are in MySQL and the e-mail. */
export const MAX_FAILURES_KEPT = 50;

/** What to restore: every campaign and/or Canvas with a tag, or a list of messages. */
export type BulkSelection = { by: 'tag'; tag: string; kinds: MessageKind[] } | { by: 'ids'; refs: MessageRef[] };

/** A selection as shown in progress reports: an id list is reduced to its length. */
export type BulkSelectionSummary = { by: 'tag'; tag: string; kinds: MessageKind[] } | { by: 'ids'; count: number };

export type BulkItemOutcome = 'pending' | 'restored' | 'already_available' | 'failed';
export type BulkItemFinalOutcome = Exclude<BulkItemOutcome, 'pending'>;

export interface BulkItemResult extends MessageRef {
  outcome: BulkItemFinalOutcome;
  /** Interaction rows brought back (restored only). */
  rowCount: number;
  /** Why it failed, or a note on an already available message. */
  reason: string | null;
}

export interface BulkFailure extends MessageRef {
  reason: string;
}

export type BulkPhase = 'registering' | 'restoring' | 'notifying' | 'completed';

/** The answer of the `progress` query, and the workflow's result once it has completed. */
export interface BulkRestoreProgress {
  requestId: string;
  workflowId: string;
  selection: BulkSelectionSummary;
  requestedBy: string;
  phase: BulkPhase;
  /** Messages in the request; known once the phase is past `registering`. */
  total: number;
  /** restored + alreadyAvailable + failed. */
  done: number;
  restored: number;
  alreadyAvailable: number;
  failed: number;
  rowsRestored: number;
  /** Messages whose restore is under way right now, `<kind>:<id>`. */
  inFlight: string[];
  /** The first failures, with the reason; `failed` counts them all. */
  failures: BulkFailure[];
  concurrency: number;
  startedAt: string;
  finishedAt: string | null;
  /** When the summary e-mail was handed to the mailer (outbox or Resend). */
  summarySentAt: string | null;
  /** Workflow runs so far: 1 + the number of times it continued as new. */
  runs: number;
}

/** Tuning knobs with defaults; they are not part of a request's identity. */
export interface BulkRestoreTuning {
  concurrency: number;
  /**
   * Read only by restoreBulkItem, the watch of runs started before the actors told the bulk workflow
   * (patch `bulk-restore-told-by-actor`): a message counted as failed when its actor's restore had
   * failed this many attempts in a row. The actor now reports a restore that cannot proceed itself.
   */
  failAfterAttempts: number;
  /** A message counts as failed when its restore has not finished after this long. */
  messageTimeoutMs: number;
}

export const DEFAULT_BULK_TUNING: BulkRestoreTuning = {
  concurrency: DEFAULT_BULK_CONCURRENCY,
  failAfterAttempts: 5,
  messageTimeoutMs: 60 * 60_000,
};

export interface BulkRestoreInput {
  requestId: string;
  /** For an id list, only the first run carries the ids: they are in MySQL from then on. */
  selection: BulkSelection;
  requestedBy: string;
  tuning: BulkRestoreTuning;
  /** Called with a signed POST (bulk_restore.completed) once the request is done. Absent in requests before callbacks. */
  callbackUrl?: string;
  /** Set only by continue-as-new. */
  carried?: BulkRestoreState;
}

/** Everything the workflow knows, carried whole (and small) through continue-as-new. */
export interface BulkRestoreState {
  /** Keys this execution's rows in bulk_restore_items: `<requestId>/<first run id>`. */
  executionKey: string;
  /** The restore request id each actor receives; the same for every message of this execution. */
  actorRequestId: string;
  selection: BulkSelectionSummary;
  phase: BulkPhase;
  total: number;
  restored: number;
  alreadyAvailable: number;
  failed: number;
  rowsRestored: number;
  failures: BulkFailure[];
  /** Keyset position of the last pending item fetched from MySQL. */
  cursor: MessageRef | null;
  exhausted: boolean;
  /** Fetched, not yet started (at most one page). */
  queue: MessageRef[];
  startedAt: string;
  finishedAt: string | null;
  summarySentAt: string | null;
  runs: number;
}

export interface RegisterItemsResult {
  total: number;
  pending: number;
  alreadyAvailable: number;
  failed: number;
  /** The first failures (unknown messages), at most MAX_FAILURES_KEPT. */
  failures: BulkFailure[];
}

export type PreviewClass = 'restore' | 'already_available' | 'unknown';

export interface PreviewItem extends MessageRef {
  name: string | null;
  /** Lifecycle state as recorded in message_availability; null when the message never stopped. */
  state: string | null;
  action: PreviewClass;
}

export interface BulkRestorePreview {
  selection: BulkSelectionSummary;
  total: number;
  toRestore: number;
  alreadyAvailable: number;
  unknown: number;
  /** The first messages, in (kind, id) order; `truncated` when there are more. */
  items: PreviewItem[];
  truncated: boolean;
}

export interface BulkPreviewInput {
  selection: BulkSelection;
  limit: number;
}

export function bulkRestoreWorkflowId(requestId: string): string {
  return `${BULK_RESTORE_WORKFLOW_ID_PREFIX}${requestId}`;
}

export function summariseSelection(selection: BulkSelection): BulkSelectionSummary {
  return selection.by === 'tag'
    ? { by: 'tag', tag: selection.tag, kinds: [...selection.kinds] }
    : { by: 'ids', count: selection.refs.length };
}

export function describeSelection(selection: BulkSelectionSummary): string {
  if (selection.by === 'ids') return `${selection.count} selected message${selection.count === 1 ? '' : 's'}`;
  const what = selection.kinds.length === 1 ? (selection.kinds[0] === 'campaign' ? 'campaigns' : 'Canvases') : 'campaigns and Canvases';
  return `expired ${what} tagged "${selection.tag}"`;
}

export function refText(ref: MessageRef): string {
  return `${ref.kind}:${ref.id}`;
}
