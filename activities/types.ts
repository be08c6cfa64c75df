import type { ArchiveManifest, LifecycleState, MessageKind, MessageRef, RestoreSummary } from '../src/shared/types';

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

export interface RestoreEmail {
  to: string;
  restoreId: string;
  kind: MessageKind;
  id: string;
  name: string | null;
  rowCount: number;
  completedAt: string;
}

export type DeadlinePurpose = 'expiry' | 'cleanup';

/** The activity interface the workflow proxies; implemented in activities/index.ts. */
export interface LifecycleActivities {
  loadMessageDetails(ref: MessageRef): Promise<MessageDetails>;
  recordAvailability(record: AvailabilityRecord): Promise<void>;
  countActiveReferences(ref: MessageRef): Promise<number>;
  archiveInteractions(input: ArchiveInput): Promise<ArchiveManifest>;
  restoreInteractions(input: ArchiveInput): Promise<RestoreSummary>;
  sendRestoreEmail(email: RestoreEmail): Promise<void>;
}

/** Local activities: read the worker's configuration, recorded in history so replay stays deterministic. */
export interface PolicyActivities {
  planDeadline(input: { from: string; purpose: DeadlinePurpose }): Promise<string>;
}
