/**
 * The lifecycle actor: one per campaign or Canvas, the only writer of its interaction data's availability.
 *
 * Signal handlers only append to an inbox; the main loop applies inbox events one at a time, so every
 * transition (and the activities it needs) happens in one place, in order, and handlers never await.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { LifecycleActivities, PolicyActivities, RestoreEmail } from '../activities/types';
import {
  InteractionDataExpiresAt,
  InteractionDataState,
  MessageKindAttr,
  MessageTags,
} from '../src/shared/searchAttributes';
import {
  RESUME_REFUSED_MESSAGE,
  type ArchiveManifest,
  type CompletedRestore,
  type LifecycleState,
  type LifecycleStatus,
  type MessageKind,
  type PendingRestore,
} from '../src/shared/types';
import {
  messageDetailsSignal,
  referencesChangedSignal,
  restoreSignal,
  resumeSignal,
  statusQuery,
  stopSignal,
} from './definitions';

const retryForever = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' } as const;

const db = proxyActivities<LifecycleActivities>({ startToCloseTimeout: '1m', retry: retryForever });
// Moving rows can take long; a short heartbeat timeout lets a new worker resume quickly from the
// heartbeated cursor when the one running it dies.
const mover = proxyActivities<LifecycleActivities>({
  startToCloseTimeout: '12h',
  heartbeatTimeout: '15s',
  retry: retryForever,
});
const mailer = proxyActivities<LifecycleActivities>({
  startToCloseTimeout: '1m',
  retry: { ...retryForever, maximumInterval: '10m' },
});
const policy = proxyLocalActivities<PolicyActivities>({ startToCloseTimeout: '10s' });

type InboxEvent =
  | { type: 'stop'; stoppedAt: string }
  | { type: 'resume'; receivedAt: string }
  | { type: 'restore'; request: PendingRestore }
  | { type: 'referencesChanged' }
  | { type: 'details'; name?: string; tags?: string[] };

/** Everything the actor knows; carried whole through continue-as-new. Instants are ISO strings. */
export interface ActorState {
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
  lastCheckedAt: string | null;
  referencesChanged: boolean;
  pendingRestores: PendingRestore[];
  /** Recent restore request ids, so a duplicated restore signal is harmless. */
  seenRestoreIds: string[];
  lastRestore: CompletedRestore | null;
  lastRefusal: LifecycleStatus['lastRefusal'];
  unsentEmails: RestoreEmail[];
  inbox: InboxEvent[];
  revision: number;
}

export interface LifecycleInput {
  kind: MessageKind;
  id: string;
  /** Set only by continue-as-new. */
  carried?: ActorState;
}

const SEEN_RESTORE_IDS_KEPT = 200;

function nowIso(): string {
  return new Date(Date.now()).toISOString();
}

function isAvailable(state: LifecycleState): boolean {
  return state === 'active' || state === 'stopped' || state === 'retained';
}

function initialState(kind: MessageKind, id: string): ActorState {
  return {
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
    unsentEmails: [],
    inbox: [],
    revision: 0,
  };
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
    lastCheckedAt: s.lastCheckedAt,
    archive: s.archive,
    pendingRestores: s.pendingRestores,
    lastRestore: s.lastRestore,
    lastRefusal: s.lastRefusal,
    revision: s.revision,
  };
}

export async function interactionDataLifecycle(input: LifecycleInput): Promise<void> {
  const s: ActorState = input.carried ?? initialState(input.kind, input.id);

  setHandler(stopSignal, (payload) => {
    const receivedAt = nowIso();
    const stoppedAt = payload?.stoppedAt && !Number.isNaN(Date.parse(payload.stoppedAt)) ? payload.stoppedAt : receivedAt;
    s.inbox.push({ type: 'stop', stoppedAt: new Date(Date.parse(stoppedAt)).toISOString() });
  });
  setHandler(resumeSignal, () => {
    s.inbox.push({ type: 'resume', receivedAt: nowIso() });
  });
  setHandler(restoreSignal, (payload) => {
    const request: PendingRestore = {
      requestId: payload?.requestId || uuid4(),
      requestedBy: payload?.requestedBy ?? '',
      requestedAt: nowIso(),
    };
    if (s.seenRestoreIds.includes(request.requestId)) return; // a duplicate changes nothing
    s.seenRestoreIds = [...s.seenRestoreIds, request.requestId].slice(-SEEN_RESTORE_IDS_KEPT);
    if (isAvailable(s.state)) {
      s.inbox.push({ type: 'restore', request });
    } else {
      // Expired, or data on the move: queued at once, so a request that arrives while a restore is
      // running is answered by that restore.
      s.pendingRestores = [...s.pendingRestores, request];
    }
  });
  setHandler(referencesChangedSignal, () => {
    s.inbox.push({ type: 'referencesChanged' });
  });
  setHandler(messageDetailsSignal, (payload) => {
    s.inbox.push({ type: 'details', name: payload?.name, tags: payload?.tags });
  });
  setHandler(statusQuery, () => statusOf(s));

  function refuse(signal: string, reason: string): void {
    s.lastRefusal = { signal, reason, at: nowIso() };
    log.info('signal refused', { signal, reason, state: s.state });
  }

  /**
   * Makes a transition visible: search attributes at once, then the availability row features read.
   * With `becoming`, the actor itself takes that state only once the row records it.
   */
  async function publish(becoming?: LifecycleState): Promise<void> {
    s.revision += 1;
    const state = becoming ?? s.state;
    const expiresAt = state === 'stopped' || state === 'retained' ? s.dueAt : null;
    const pairs: SearchAttributeUpdatePair[] = [
      { key: InteractionDataState, value: state },
      { key: MessageKindAttr, value: s.kind },
      { key: MessageTags, value: s.tags.length > 0 ? s.tags : null },
      { key: InteractionDataExpiresAt, value: expiresAt ? new Date(expiresAt) : null },
    ];
    upsertSearchAttributes(pairs);
    await db.recordAvailability({
      kind: s.kind,
      id: s.id,
      state,
      available: isAvailable(state),
      stoppedAt: s.stoppedAt,
      expiresAt,
      generation: s.generation,
      revision: s.revision,
    });
    if (becoming) s.state = becoming;
  }

  /** Not awaited: the actor goes on answering signals while the e-mail is retried. */
  function sendEmail(email: RestoreEmail): void {
    void mailer.sendRestoreEmail(email).then(
      () => {
        s.unsentEmails = s.unsentEmails.filter((e) => e.restoreId !== email.restoreId || e.to !== email.to);
      },
      (err: unknown) => log.error('restore e-mail failed for good', { restoreId: email.restoreId, error: String(err) }),
    );
  }

  async function applyEvent(e: InboxEvent): Promise<void> {
    switch (e.type) {
      case 'stop': {
        if (s.state !== 'active') return; // already stopped: a duplicate stop changes nothing
        if (s.lastResumedAt && e.stoppedAt < s.lastResumedAt) {
          return; // a stop that happened before the latest resume arrived out of order
        }
        // Planned before any field changes, so a status query never sees a half-made transition.
        const dueAt = await policy.planDeadline({ from: e.stoppedAt, purpose: 'expiry' });
        s.state = 'stopped';
        s.stoppedAt = e.stoppedAt;
        s.dueAt = dueAt;
        await publish();
        return;
      }
      case 'resume': {
        if (s.state === 'stopped' || s.state === 'retained') {
          s.state = 'active';
          s.stoppedAt = null;
          s.dueAt = null;
          s.lastResumedAt = e.receivedAt;
          await publish();
        } else if (!isAvailable(s.state)) {
          refuse('resume', RESUME_REFUSED_MESSAGE[s.kind]);
        }
        return;
      }
      case 'restore': {
        if (isAvailable(s.state)) {
          refuse('restore', 'interaction data is already available; nothing to restore');
        } else {
          s.pendingRestores = [...s.pendingRestores, e.request];
        }
        return;
      }
      case 'referencesChanged':
        if (s.state === 'retained') s.referencesChanged = true;
        return;
      case 'details': {
        if (e.name !== undefined) s.name = e.name;
        if (e.tags !== undefined) s.tags = [...new Set(e.tags)].sort();
        await publish();
        return;
      }
    }
  }

  async function checkReferencesAndMaybeArchive(): Promise<void> {
    s.referencesChanged = false;
    s.activeReferences = await db.countActiveReferences({ kind: s.kind, id: s.id });
    s.lastCheckedAt = nowIso();
    if (s.activeReferences > 0) {
      const nextCheck = await policy.planDeadline({ from: s.lastCheckedAt, purpose: 'cleanup' });
      s.state = 'retained';
      s.dueAt = nextCheck;
      await publish();
      return;
    }
    s.state = 'archiving';
    s.generation += 1;
    s.dueAt = null;
    await publish(); // unavailable before a single row moves
    await finishArchive();
  }

  async function finishArchive(): Promise<void> {
    const manifest = await mover.archiveInteractions({ kind: s.kind, id: s.id, generation: s.generation });
    const nextSweep = await policy.planDeadline({ from: nowIso(), purpose: 'cleanup' });
    s.archive = manifest;
    s.dueAt = nextSweep;
    await publish('expired'); // as after a restore: the row first, then the actor's status
  }

  /** Late interactions of an expired message are stored hot but invisible; each cleanup cycle moves them too. */
  async function sweepLateInteractions(): Promise<void> {
    s.archive = await mover.archiveInteractions({ kind: s.kind, id: s.id, generation: s.generation });
    s.dueAt = await policy.planDeadline({ from: nowIso(), purpose: 'cleanup' });
  }

  async function restore(): Promise<void> {
    s.state = 'restoring';
    await publish();
    const summary = await mover.restoreInteractions({ kind: s.kind, id: s.id, generation: s.generation });
    const completedAt = nowIso();
    // Restored data is like data of a message that has just stopped: another full TTL before it expires.
    const dueAt = await policy.planDeadline({ from: completedAt, purpose: 'expiry' });
    s.stoppedAt = completedAt;
    s.dueAt = dueAt;
    s.archive = null;
    // The row every feature reads says the data is back before the actor's status does, so a client
    // that saw `stopped` never finds the data still unavailable.
    await publish('stopped');
    // Requests that came in until now, while the row was being written too, are answered by this restore.
    const requests = s.pendingRestores;
    s.pendingRestores = [];
    if (requests.length > 0) s.lastRestore = { ...requests[requests.length - 1], completedAt, rowCount: summary.rowCount };
    for (const r of requests) {
      if (!r.requestedBy) continue;
      const email: RestoreEmail = {
        to: r.requestedBy,
        restoreId: r.requestId,
        kind: s.kind,
        id: s.id,
        name: s.name,
        rowCount: summary.rowCount,
        completedAt,
      };
      s.unsentEmails.push(email);
      sendEmail(email);
    }
  }

  if (input.carried) {
    for (const email of s.unsentEmails) sendEmail(email);
  } else {
    const details = await db.loadMessageDetails({ kind: s.kind, id: s.id });
    s.name = details.name;
    s.tags = details.tags;
    if (details.persisted) {
      // A predecessor actor was terminated or reset: continue from what it last recorded.
      s.state = details.persisted.state;
      s.stoppedAt = details.persisted.stoppedAt;
      s.dueAt = details.persisted.expiresAt;
      s.generation = details.persisted.generation;
      s.revision = details.persisted.revision;
    }
    await publish();
  }

  for (;;) {
    if (workflowInfo().continueAsNewSuggested && s.inbox.length === 0) {
      // E-mails still being sent are carried as unsent and handed to the next run, which sends them
      // again under the same idempotency key: waiting here would leave signals unanswered while a
      // mail provider is down.
      await condition(allHandlersFinished);
      await continueAsNew<typeof interactionDataLifecycle>({ kind: s.kind, id: s.id, carried: s });
    }

    const event = s.inbox.shift();
    if (event) {
      await applyEvent(event);
      continue;
    }

    switch (s.state) {
      case 'active':
        await condition(() => s.inbox.length > 0 || workflowInfo().continueAsNewSuggested);
        break;
      case 'stopped':
      case 'retained': {
        const due = s.dueAt ? Date.parse(s.dueAt) - Date.now() : 0;
        if (due > 0 && !s.referencesChanged) {
          await condition(() => s.inbox.length > 0 || s.referencesChanged, due);
        } else {
          await checkReferencesAndMaybeArchive();
        }
        break;
      }
      case 'archiving':
        // Only reached after a restart from a persisted 'archiving' record: finish the move.
        await finishArchive();
        break;
      case 'expired': {
        if (s.pendingRestores.length > 0) {
          await restore();
          break;
        }
        const due = s.dueAt ? Date.parse(s.dueAt) - Date.now() : 0;
        if (due > 0) {
          await condition(() => s.inbox.length > 0 || s.pendingRestores.length > 0, due);
        } else {
          await sweepLateInteractions();
        }
        break;
      }
      case 'restoring':
        await restore();
        break;
    }
  }
}
