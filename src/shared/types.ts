/** Types shared by the workflow, its activities, the client, the API and the CLI. Pure: no I/O. */

export const MESSAGE_KINDS = ['campaign', 'canvas'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

export const LIFECYCLE_STATES = ['active', 'stopped', 'retained', 'archiving', 'expired', 'restoring'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export interface MessageRef {
  kind: MessageKind;
  id: string;
}

export interface StopSignal {
  /** ISO-8601 instant the message stopped; defaults to the moment the actor receives the signal. */
  stoppedAt?: string;
}

export type ResumeSignal = Record<string, never>;

export interface RestoreSignal {
  /** E-mail address that receives the "restore complete" notification; empty for none. */
  requestedBy: string;
  /** URL called (a signed POST) when the request is served or cannot be; checked by the client against the allowed hosts. */
  callbackUrl?: string;
  /** Caller-chosen id; a restore with an id the actor has already seen is ignored. */
  requestId?: string;
  /** Workflow ID that gets a `restoreDone` signal when this request is served or cannot be. */
  notifyWorkflowId?: string;
}

/** What the `stop` Update answers. */
export interface StopOutcome {
  /** False when the stop changed nothing: already stopped, or it happened before the latest resume. */
  changed: boolean;
  state: LifecycleState;
  stoppedAt: string | null;
  expiresAt: string | null;
}

/** What the `resume` Update answers; a refusal is a failed Update carrying rule 9's words. */
export interface ResumeOutcome {
  /** False when the message was already active. */
  changed: boolean;
  state: LifecycleState;
}

/** What the `restore` Update answers, at once (the restore itself is reported by e-mail and `restoreDone`). */
export interface RestoreOutcome {
  requestId: string;
  /** `accepted`: queued, kept in MySQL, served by the next restore; `already_available`: nothing to do. */
  outcome: 'accepted' | 'already_available';
  state: LifecycleState;
}

/** Signalled to `notifyWorkflowId` when a restore request is served or cannot proceed. */
export interface RestoreDoneSignal extends MessageRef {
  requestId: string;
  outcome: 'restored' | 'failed';
  rowCount: number;
  reason: string | null;
}

/** Sent to a message's actor (`eraseUser` Update): erase this user's rows from the message, between its moves. */
export interface EraseUserRequest {
  requestId: string;
  userId: string;
  /** ISO instant: the user's rows that occurred up to it go; later ones are a new life. */
  erasedThrough: string;
  /** The erasure workflow to tell (`messageErased`) once the message's part is done or has failed. */
  notifyWorkflowId: string;
}

/** The actor's answer to `eraseUser`: queued (or already queued) behind its current step. */
export interface EraseUserAccepted {
  requestId: string;
  state: LifecycleState;
}

/** Signalled by an actor to the erasure workflow: its part of the request is recorded in `erasure_messages`. */
export interface MessageErasedSignal extends MessageRef {
  requestId: string;
  ok: boolean;
}

/** A step that cannot proceed without an operator; the actor waits for the `retry` Update. */
export interface LifecycleProblem {
  /** The activity that failed for good, e.g. `restoreInteractions`. */
  activity: string;
  /** The failure's type, e.g. `ChunkIntegrityError`: the `InteractionDataProblem` search attribute. */
  type: string;
  error: string;
  since: string;
}

export type ReferencesChangedSignal = Record<string, never>;
export type LateInteractionsSignal = Record<string, never>;

export interface MessageDetailsSignal {
  name?: string;
  tags?: string[];
}

export interface ArchiveManifest {
  kind: MessageKind;
  id: string;
  generation: number;
  rowCount: number;
  chunkCount: number;
  compressedBytes: number;
  /** sha256 over the chunk checksums in sequence order. */
  checksum: string;
  /** The archive store the generation is in (`mysql` or `s3`). Absent in manifests from before it. */
  store?: string;
}

/** An active audience whose retargeting filter on the message keeps its data (rule 3). */
export interface ReferencingAudience {
  id: string;
  /** campaign, canvas, segment or content_card. */
  type: string;
  name: string | null;
}

export interface RestoreSummary {
  generation: number;
  rowCount: number;
  chunkCount: number;
}

export interface PendingRestore {
  requestId: string;
  requestedBy: string;
  requestedAt: string;
  notifyWorkflowId?: string;
  callbackUrl?: string;
}

/** A signed POST to a requester's callback URL (src/callbacks/deliver.ts). */
export interface CallbackDelivery {
  url: string;
  /** The same on every attempt and every run that sends it: receivers deduplicate by it. */
  deliveryId: string;
  /** `restore.completed`, `restore.failed` or `bulk_restore.completed`; also the body's `event`. */
  event: string;
  body: Record<string, unknown>;
}

export interface CompletedRestore extends PendingRestore {
  completedAt: string;
  rowCount: number;
}

export interface LifecycleStatus {
  kind: MessageKind;
  id: string;
  name: string | null;
  tags: string[];
  state: LifecycleState;
  available: boolean;
  /** When the data expires (stopped), or the next cleanup check (retained); null otherwise. */
  expiresAt: string | null;
  stoppedAt: string | null;
  /** Active audiences found referencing the message at the last check. */
  activeReferences: number;
  /** Which they are (the first REFERENCING_AUDIENCES_LISTED of them, by id), while retained. */
  referencingAudiences: ReferencingAudience[];
  lastCheckedAt: string | null;
  archive: ArchiveManifest | null;
  pendingRestores: PendingRestore[];
  lastRestore: CompletedRestore | null;
  /** Last signal the actor refused, with the reason users see. */
  lastRefusal: { signal: string; reason: string; at: string } | null;
  /** Set while a step cannot proceed without an operator (fix, then the `retry` Update). */
  problem: LifecycleProblem | null;
  /** Set while the data is due but kept available because archiving is paused (`interaction-data archiving`). */
  archivingHeld: ArchivingHold | null;
  revision: number;
}

/** Why an actor whose data is due keeps it: archiving is paused. */
export interface ArchivingHold {
  pausedBy: string;
  pausedAt: string;
  reason: string | null;
  /** When the actor looks again unless resuming wakes it first. */
  recheckAt: string;
}

/** Rule 9: the words users know. */
export const RESUME_REFUSED_MESSAGE: Record<MessageKind, string> = {
  canvas: 'Resume is only available for stopped Canvases with available interaction data',
  campaign: 'Resume is only available for stopped Campaigns with available interaction data',
};

/** How many referencing audiences an actor lists by name; `activeReferences` counts them all. */
export const REFERENCING_AUDIENCES_LISTED = 20;

/** The 14 retargeting filters on one specific message: the only ones that retain data (rule 3). */
export const SPECIFIC_MESSAGE_FILTERS = [
  'clicked_alias_in_campaign',
  'clicked_alias_in_canvas_step',
  'clicked_opened_campaign',
  'clicked_opened_step',
  'converted_from_campaign',
  'converted_from_canvas',
  'entered_canvas_variation',
  'in_campaign_control_group',
  'in_canvas_control_group',
  'last_received_message_from_specific_campaign',
  'last_received_message_from_specific_canvas_step',
  'received_campaign_variant',
  'received_message_from_campaign',
  'received_message_from_canvas_step',
] as const;
export type SpecificMessageFilter = (typeof SPECIFIC_MESSAGE_FILTERS)[number];

/** The 3 filters by tag: they read interaction data but never retain it (rule 4). */
export const TAG_FILTERS = ['received_message_with_tag', 'clicked_opened_with_tag', 'last_received_message_with_tag'] as const;
export type TagFilter = (typeof TAG_FILTERS)[number];

export const AUDIENCE_TYPES = ['segment', 'campaign', 'canvas', 'content_card'] as const;
export type AudienceType = (typeof AUDIENCE_TYPES)[number];
