import type {
  ArchiveManifest,
  ArchivingHold,
  CallbackDelivery,
  LifecycleState,
  MessageKind,
  MessageRef,
  PendingRestore,
  ReferencingAudience,
  RestoreSummary,
} from '../src/shared/types';

export interface PersistedAvailability {
  state: LifecycleState;
  stoppedAt: string | null;
  expiresAt: string | null;
  generation: number;
  /** The revision last written, so a successor's writes are not taken for stale ones. */
  revision: number;
}

export interface MessageDetails {
  name: string | null;
  tags: string[];
  /** What the availability table last recorded, so a re-started actor picks up where its predecessor was. */
  persisted: PersistedAvailability | null;
  /**
   * Whether anyone ever defined, stopped, restored or sent events for the message. Absent in results
   * recorded before it existed, which count as known.
   */
  known?: boolean;
  /** Restore requests accepted by a predecessor and not yet served (after a terminate or reset). */
  pendingRestores?: PendingRestore[];
}

export interface AvailabilityRecord extends MessageRef {
  state: LifecycleState;
  available: boolean;
  stoppedAt: string | null;
  expiresAt: string | null;
  generation: number;
  /** Monotonic per actor: a late retry of an older write never overwrites a newer one. */
  revision: number;
}

export interface ArchiveInput extends MessageRef {
  generation: number;
}

export interface ExpireInput extends ArchiveInput {
  stoppedAt: string | null;
  /** The availability record's revision for `archiving`; `expired` is recorded at the next one. */
  revision: number;
}

export interface ExpireOutcome extends ArchiveOutcome {
  /** One cleanup interval after the archive: the earliest next sweep. */
  nextSweepAt: string;
}

export interface RestoreEmail {
  to: string;
  restoreId: string;
  kind: MessageKind;
  id: string;
  name: string | null;
  rowCount: number;
  completedAt: string;
  /** Set when the restore cannot proceed: the e-mail says why instead of "restored". */
  failure?: string;
}

export type DeadlinePurpose = 'expiry' | 'cleanup';

/** An archive or sweep's manifest, and whether a hot table of the message was there when it ended (late rows). */
export interface ArchiveOutcome extends ArchiveManifest {
  /** Absent in results recorded before it. */
  hotTableLeft?: boolean;
  /** One cleanup interval after the move: the earliest next sweep. Absent in results recorded before it. */
  nextSweepAt?: string;
}

/** A restore's summary with the instant it ended and its new deadline, a TTL later. */
export interface RestoreOutcome extends RestoreSummary {
  /** Absent in results recorded before it. */
  completedAt?: string;
  expiresAt?: string;
}

/** A stop's availability record, its deadline planned by the worker's TTL. */
export interface StopRecord extends MessageRef {
  stoppedAt: string;
  generation: number;
  revision: number;
}

/** How many active audiences filter on the message, when that was counted and when to count again. */
export interface ReferenceCount {
  count: number;
  checkedAt: string;
  /** One cleanup interval after `checkedAt`. */
  nextCheckAt: string;
  /** The first of them by id, with their type and name. */
  audiences: ReferencingAudience[];
  /**
   * Set when nothing references the data but archiving is paused: the actor keeps it and looks again
   * at `recheckAt`. Absent in results recorded before the brake, and whenever archiving is not paused.
   */
  archivingHeld?: ArchivingHold | null;
}

/** The activity interface the workflow proxies; implemented in activities/index.ts. */
export interface LifecycleActivities {
  loadMessageDetails(ref: MessageRef): Promise<MessageDetails>;
  recordAvailability(record: AvailabilityRecord): Promise<void>;
  /** Records the message `stopped` with its deadline, a TTL after `stoppedAt`; returns the deadline. */
  recordStop(record: StopRecord): Promise<{ expiresAt: string }>;
  countActiveReferences(ref: MessageRef): Promise<number>;
  countReferences(ref: MessageRef): Promise<ReferenceCount>;
  archiveInteractions(input: ArchiveInput): Promise<ArchiveOutcome>;
  /**
   * An expiry in one step: records the message unavailable (`archiving`, at `revision`), archives it, and
   * records it `expired` (at `revision + 1`), so the actor schedules one activity instead of three.
   */
  expireMessage(input: ExpireInput): Promise<ExpireOutcome>;
  restoreInteractions(input: ArchiveInput): Promise<RestoreOutcome>;
  sendRestoreEmail(email: RestoreEmail): Promise<void>;
  /** One signed POST to a requester's callback URL; retried by Temporal until it is answered 2xx. */
  deliverCallback(delivery: CallbackDelivery): Promise<void>;
  /** Rule 9 for the message's own audiences: the refusal's words, or null when it may resume. */
  checkResumeGuards(ref: MessageRef): Promise<string | null>;
  /** Keeps an accepted restore request in MySQL, where a new run after a terminate or reset finds it. */
  keepRestoreRequest(input: MessageRef & { request: PendingRestore }): Promise<void>;
  /** Marks kept restore requests as served. */
  settleRestoreRequests(input: MessageRef & { requestIds: string[] }): Promise<void>;
  /**
   * Erases a user's rows from the message (src/privacy/eraseMessage.ts) and records the outcome in
   * `erasure_messages`; `ok` false when it cannot be done without an operator (recorded with the reason).
   */
  eraseUserInMessage(input: MessageRef & { requestId: string; userId: string; erasedThrough: string }): Promise<{ ok: boolean }>;
}

/**
 * Local activities: read the worker's configuration, recorded in history so replay stays deterministic.
 * Only histories recorded before deadlines came back with the activities that need them call it.
 */
export interface PolicyActivities {
  planDeadline(input: { from: string; purpose: DeadlinePurpose }): Promise<string>;
}
