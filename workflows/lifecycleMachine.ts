/**
 * The lifecycle actor's state and every transition, without Temporal: pure functions of the state, the
 * event and the instant, tested on their own (test/unit/lifecycleMachine.test.ts). The workflow
 * (workflows/lifecycle.ts) wires messages to these methods, runs the activities a step asks for and
 * hands their results back.
 *
 * Transitions (`→ s` takes state s; "answered" means the caller of an Update gets that answer):
 *
 * | state                          | event                                    | guard                               | result                                   |
 * |--------------------------------|------------------------------------------|-------------------------------------|------------------------------------------|
 * | active                         | stop {stoppedAt}                         | not before the latest resume        | → stopped, deadline = stoppedAt + TTL    |
 * | stopped, retained, …           | stop                                     |                                     | answered: unchanged                      |
 * | stopped                        | deadline passed, references counted      | references > 0                      | → retained, next check = now + interval  |
 * | stopped, retained              | deadline passed or references changed    | references = 0, archiving paused    | → stopped (held), next look = recheck    |
 * | stopped, retained              | deadline passed or references changed    | references = 0 and no resume queued | → archiving (generation + 1)             |
 * | stopped (held)                 | archiving resumed (references changed)   |                                     | references counted again at once         |
 * | archiving                      | archive done                             | a hot table is left (late rows)     | → expired, next sweep = now + interval   |
 * | archiving                      | archive done                             | no hot table is left                | → expired, asleep (no timer)             |
 * | expired                        | sweep deadline passed                    |                                     | sweep late rows; next sweep or asleep    |
 * | expired, asleep                | late interactions                        |                                     | sweep at the interval after the last one |
 * | expired                        | restore request                          |                                     | queued, answered: accepted               |
 * | archiving, restoring           | restore request                          |                                     | queued (served after the move)           |
 * | active, stopped, retained      | restore request                          |                                     | answered: already available              |
 * | expired (request queued)       | —                                        |                                     | → restoring                              |
 * | restoring                      | restore done                             |                                     | → stopped, deadline = now + TTL, e-mails |
 * | stopped, retained              | resume                                   | the message's audiences pass rule 9 | → active                                 |
 * | active                         | resume                                   |                                     | answered: unchanged                      |
 * | archiving, expired, restoring  | resume                                   |                                     | refused with rule 9's words              |
 * | any                            | archive, sweep or restore fails for good |                                     | problem set; waits for `retry`           |
 * | any, with a problem            | retry                                    |                                     | problem cleared, the step runs again     |
 * | any                            | erase a user                             | not already queued                  | queued; erased between moves, reported   |
 *
 * A resume that is queued when the deadline's reference count comes back wins over the expiry: both
 * are decided in the same step, so a resume is never answered "accepted" for data that then expires.
 */
import {
  RESUME_REFUSED_MESSAGE,
  type EraseUserRequest,
  type ArchiveManifest,
  type ArchivingHold,
  type CallbackDelivery,
  type CompletedRestore,
  type LifecycleProblem,
  type LifecycleState,
  type LifecycleStatus,
  type MessageKind,
  type PendingRestore,
  type ReferencingAudience,
  type RestoreSummary,
} from '../src/shared/types';
import type { RestoreEmail } from '../activities/types';

/** Bumped when ActorState changes shape; `upgradeCarried` brings an older carried state up to date. */
export const ACTOR_STATE_VERSION = 2;

export type InboxEvent =
  | { type: 'stop'; stoppedAt: string; replyTo?: string }
  | { type: 'resume'; receivedAt: string; replyTo?: string }
  | { type: 'restore'; request: PendingRestore }
  | { type: 'referencesChanged' }
  | { type: 'details'; name?: string; tags?: string[] }
  | { type: 'retry'; replyTo?: string }
  | { type: 'erase'; request: EraseUserRequest }
  | { type: 'late' };

/** Everything the actor knows; carried whole through continue-as-new. Instants are ISO strings. */
export interface ActorState {
  /** Absent in states carried by runs before version 2. */
  version?: number;
  kind: MessageKind;
  id: string;
  name: string | null;
  tags: string[];
  state: LifecycleState;
  stoppedAt: string | null;
  /** Absolute deadline: expiry while stopped, next cleanup check while retained, next sweep while expired. */
  dueAt: string | null;
  lastResumedAt: string | null;
  generation: number;
  archive: ArchiveManifest | null;
  activeReferences: number;
  /** While retained: the audiences found at the last check (the first of them). Absent in runs before it. */
  referencingAudiences?: ReferencingAudience[];
  lastCheckedAt: string | null;
  referencesChanged: boolean;
  pendingRestores: PendingRestore[];
  /** Recent restore request ids, so a duplicated restore signal is harmless. */
  seenRestoreIds: string[];
  lastRestore: CompletedRestore | null;
  lastRefusal: LifecycleStatus['lastRefusal'];
  problem?: LifecycleProblem | null;
  unsentEmails: RestoreEmail[];
  inbox: InboxEvent[];
  revision: number;
  /**
   * Expired, with no hot table left after the last archive or sweep: no timer runs until ingestion's
   * `lateInteractions` wake-up (src/storage/lateWakeups.ts). Absent in runs before it.
   */
  asleep?: boolean;
  /** While expired: the earliest next sweep, one cleanup interval after the last one. */
  sweepNotBefore?: string | null;
  /** When the last archive or sweep ended. Absent in runs before it. */
  archivedAt?: string | null;
  /** Callbacks being delivered, sent again by the next run. Absent in runs before callbacks. */
  unsentCallbacks?: CallbackDelivery[];
  /** Due, unreferenced, and kept because archiving is paused. Absent in runs before the brake. */
  archivingHeld?: ArchivingHold | null;
}

export type Step =
  | { type: 'apply'; event: InboxEvent }
  | { type: 'wait'; until: string | null }
  | { type: 'checkReferences' }
  | { type: 'archive' }
  | { type: 'sweep' }
  | { type: 'restore' };

export type Answer<T> = { ok: true; value: T } | { ok: false; reason: string };

export const SEEN_RESTORE_IDS_KEPT = 200;

export function isAvailable(state: LifecycleState): boolean {
  return state === 'active' || state === 'stopped' || state === 'retained';
}

export function initialState(kind: MessageKind, id: string): ActorState {
  return {
    version: ACTOR_STATE_VERSION,
    kind,
    id,
    name: null,
    tags: [],
    state: 'active',
    stoppedAt: null,
    dueAt: null,
    lastResumedAt: null,
    generation: 0,
    archive: null,
    activeReferences: 0,
    lastCheckedAt: null,
    referencesChanged: false,
    pendingRestores: [],
    seenRestoreIds: [],
    lastRestore: null,
    lastRefusal: null,
    problem: null,
    unsentEmails: [],
    inbox: [],
    revision: 0,
  };
}

/**
 * Brings a state carried by an older run up to this version. Version 1 (no `version` field) had no
 * problem. It kept no restore request in MySQL either: its pending requests travel in the state alone
 * until a restore serves them.
 */
export function upgradeCarried(carried: ActorState): ActorState {
  const s: ActorState = { ...carried };
  if ((s.version ?? 1) < 2) {
    s.problem = null;
  }
  s.version = ACTOR_STATE_VERSION;
  return s;
}

export function statusOf(s: ActorState): LifecycleStatus {
  return {
    kind: s.kind,
    id: s.id,
    name: s.name,
    tags: s.tags,
    state: s.state,
    available: isAvailable(s.state),
    expiresAt: s.state === 'stopped' || s.state === 'retained' ? s.dueAt : null,
    stoppedAt: s.stoppedAt,
    activeReferences: s.activeReferences,
    referencingAudiences: s.state === 'retained' ? (s.referencingAudiences ?? []) : [],
    lastCheckedAt: s.lastCheckedAt,
    archive: s.archive,
    pendingRestores: s.pendingRestores,
    lastRestore: s.lastRestore,
    lastRefusal: s.lastRefusal,
    problem: s.problem ?? null,
    archivingHeld: s.state === 'stopped' ? (s.archivingHeld ?? null) : null,
    revision: s.revision,
  };
}

export class LifecycleMachine {
  constructor(readonly s: ActorState) {}

  // ---- answers a validator can give before anything is recorded ----

  /** Rule 9's words when a resume must be refused in the current state, else null. */
  resumeRefusal(): string | null {
    return isAvailable(this.s.state) ? null : RESUME_REFUSED_MESSAGE[this.s.kind];
  }

  // ---- requests ----

  /** Applies a stop; false when it changes nothing (already stopped, or older than the latest resume). */
  stop(stoppedAt: string, dueAt: string): boolean {
    if (!this.stopApplies(stoppedAt)) return false;
    this.s.state = 'stopped';
    this.s.stoppedAt = stoppedAt;
    this.s.dueAt = dueAt;
    return true;
  }

  /** Whether a stop at this instant would change the state (the deadline is planned only when it does). */
  stopApplies(stoppedAt: string): boolean {
    if (this.s.state !== 'active') return false;
    // A stop that happened before the latest resume arrived out of order.
    return !(this.s.lastResumedAt && stoppedAt < this.s.lastResumedAt);
  }

  /** Applies a resume whose rule-9 guards passed; refused (rule 9) once the data is not available. */
  resume(receivedAt: string): Answer<boolean> {
    const refusal = this.resumeRefusal();
    if (refusal) {
      this.refuse('resume', refusal, receivedAt);
      return { ok: false, reason: refusal };
    }
    if (this.s.state === 'active') return { ok: true, value: false };
    this.s.state = 'active';
    if (this.s.archivingHeld) this.s.archivingHeld = null;
    this.s.stoppedAt = null;
    this.s.dueAt = null;
    this.s.lastResumedAt = receivedAt;
    return { ok: true, value: true };
  }

  /**
   * Takes a restore request as it arrives. Duplicates (by request id) change nothing; while the data is
   * unavailable the request is queued at once, so one arriving during a restore is answered by it.
   */
  requestRestore(request: PendingRestore): 'accepted' | 'duplicate' | 'already_available' {
    if (this.s.seenRestoreIds.includes(request.requestId)) return 'duplicate';
    this.s.seenRestoreIds = [...this.s.seenRestoreIds, request.requestId].slice(-SEEN_RESTORE_IDS_KEPT);
    if (isAvailable(this.s.state)) return 'already_available';
    this.s.pendingRestores = [...this.s.pendingRestores, request];
    return 'accepted';
  }

  /** A restore request taken from the inbox (signals queue there while the data was available). */
  applyRestore(request: PendingRestore, at: string): void {
    if (isAvailable(this.s.state)) {
      this.refuse('restore', 'interaction data is already available; nothing to restore', at);
    } else {
      this.s.pendingRestores = [...this.s.pendingRestores, request];
    }
  }

  /** Also how resuming archiving wakes an actor the pause holds: it counts again at once. */
  referencesChanged(): void {
    if (this.s.state === 'retained' || (this.s.state === 'stopped' && this.s.archivingHeld)) this.s.referencesChanged = true;
  }

  details(name: string | undefined, tags: string[] | undefined): void {
    if (name !== undefined) this.s.name = name;
    if (tags !== undefined) this.s.tags = [...new Set(tags)].sort();
  }

  /** Clears the problem so its step runs again; false when there was none. */
  retry(): boolean {
    if (!this.s.problem) return false;
    this.s.problem = null;
    return true;
  }

  /** Queues a user's erasure unless the same request is queued already (a retried ask). */
  requestErasure(request: EraseUserRequest): void {
    if (this.s.inbox.some((e) => e.type === 'erase' && e.request.requestId === request.requestId)) return;
    this.s.inbox.push({ type: 'erase', request });
  }

  hasQueuedResume(): boolean {
    return this.s.inbox.some((e) => e.type === 'resume');
  }

  // ---- the step loop ----

  /** What the actor does next at instant `now` (ms). */
  nextStep(now: number): Step {
    const event = this.s.inbox[0];
    if (event) return { type: 'apply', event };
    if (this.s.problem) return { type: 'wait', until: null };
    const due = (): number => (this.s.dueAt ? Date.parse(this.s.dueAt) - now : 0);
    switch (this.s.state) {
      case 'active':
        return { type: 'wait', until: null };
      case 'stopped':
      case 'retained':
        return due() > 0 && !this.s.referencesChanged ? { type: 'wait', until: this.s.dueAt } : { type: 'checkReferences' };
      case 'archiving':
        return { type: 'archive' };
      case 'expired':
        if (this.s.pendingRestores.length > 0) return { type: 'restore' };
        if (this.s.asleep) return { type: 'wait', until: null };
        return due() > 0 ? { type: 'wait', until: this.s.dueAt } : { type: 'sweep' };
      case 'restoring':
        return { type: 'restore' };
    }
  }

  /** Whether a wait of the current step should end early. */
  wakes(): boolean {
    if (this.s.inbox.length > 0) return true;
    if (this.s.problem) return false;
    if (this.s.state === 'stopped' || this.s.state === 'retained') return this.s.referencesChanged;
    if (this.s.state === 'expired') return this.s.pendingRestores.length > 0;
    return false;
  }

  /**
   * The deadline's reference count is back. Referenced: retained until the next check. Unreferenced:
   * archive, unless a resume is already queued, which then wins, or archiving is paused, which keeps
   * the data available until the hold's recheck (or until resuming wakes the actor).
   */
  referencesCounted(
    count: number,
    checkedAt: string,
    nextCheck: string,
    resumeQueued: boolean,
    audiences: ReferencingAudience[] = [],
    hold: ArchivingHold | null = null,
  ): 'retained' | 'archiving' | 'resume-first' | 'held' {
    this.s.referencesChanged = false;
    this.s.activeReferences = count;
    this.s.referencingAudiences = count > 0 ? audiences : [];
    this.s.lastCheckedAt = checkedAt;
    if (this.s.archivingHeld) this.s.archivingHeld = null;
    if (count > 0) {
      this.s.state = 'retained';
      this.s.dueAt = nextCheck;
      return 'retained';
    }
    if (resumeQueued) return 'resume-first';
    if (hold) {
      this.s.state = 'stopped';
      this.s.dueAt = hold.recheckAt;
      this.s.archivingHeld = hold;
      return 'held';
    }
    this.s.state = 'archiving';
    this.s.generation += 1;
    this.s.dueAt = null;
    return 'archiving';
  }

  /**
   * An archive or sweep is done. With `sleep` (no hot table left), no sweep is due until late
   * interactions wake the actor; `nextSweep` is then the earliest it may sweep again.
   */
  archived(manifest: ArchiveManifest, nextSweep: string, sleep = false, at: string | null = null): void {
    this.s.archive = manifest;
    this.s.archivedAt = at;
    this.s.asleep = sleep;
    this.s.dueAt = sleep ? null : nextSweep;
    this.s.sweepNotBefore = nextSweep;
  }

  /** Ingestion stored events while the data was unavailable: an asleep actor sweeps, once the interval allows. */
  lateInteractions(now: string): boolean {
    if (this.s.state !== 'expired' || !this.s.asleep) return false;
    this.s.asleep = false;
    const notBefore = this.s.sweepNotBefore ?? now;
    this.s.dueAt = Date.parse(notBefore) > Date.parse(now) ? notBefore : now;
    return true;
  }

  /**
   * The restore is done: another full TTL before the data expires again. Returns the requests it served
   * and the e-mails to send.
   */
  restored(summary: RestoreSummary, completedAt: string, dueAt: string): { served: PendingRestore[]; emails: RestoreEmail[] } {
    this.s.asleep = false;
    this.s.stoppedAt = completedAt;
    this.s.dueAt = dueAt;
    this.s.archive = null;
    const served = this.s.pendingRestores;
    this.s.pendingRestores = [];
    if (served.length > 0) this.s.lastRestore = { ...served[served.length - 1], completedAt, rowCount: summary.rowCount };
    const emails = served.filter((r) => r.requestedBy).map((r) => this.email(r, summary.rowCount, completedAt));
    return { served, emails };
  }

  /** A step failed for good: the actor keeps its state and waits for an operator's retry. */
  failed(problem: LifecycleProblem): { emails: RestoreEmail[] } {
    const first = !this.s.problem;
    this.s.problem = problem;
    if (!first || (this.s.state !== 'restoring' && this.s.state !== 'expired')) return { emails: [] };
    // The requesters of a restore that cannot proceed are told, once per problem.
    const reason = `${problem.type}: ${problem.error}`;
    const emails = this.s.pendingRestores
      .filter((r) => r.requestedBy)
      .map((r) => ({ ...this.email(r, 0, problem.since), failure: reason }));
    return { emails };
  }

  /** The e-mail telling a requester whose restore was accepted while a problem stands that it cannot proceed. */
  problemNotice(r: PendingRestore): RestoreEmail | null {
    const p = this.s.problem;
    if (!p || !r.requestedBy) return null;
    return { ...this.email(r, 0, p.since), failure: `${p.type}: ${p.error}` };
  }

  private email(r: PendingRestore, rowCount: number, at: string): RestoreEmail {
    return { to: r.requestedBy, restoreId: r.requestId, kind: this.s.kind, id: this.s.id, name: this.s.name, rowCount, completedAt: at };
  }

  private refuse(signal: string, reason: string, at: string): void {
    this.s.lastRefusal = { signal, reason, at };
  }
}
