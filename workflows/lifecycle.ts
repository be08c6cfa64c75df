/**
 * The lifecycle actor: one per campaign or Canvas, the only writer of its interaction data's availability.
 *
 * Wiring only: the state and every transition live in LifecycleMachine (workflows/lifecycleMachine.ts).
 * Signal and Update handlers append to an inbox; the loop applies inbox events one at a time, so every
 * transition (and the activities it needs) happens in one place, in order. An Update's handler waits
 * for its event's outcome and answers with it.
 *
 * Changing this file: a change to the commands a recorded history holds (activities, timers, markers,
 * signals sent) goes behind `patched('<id>')` (docs/WORKFLOWS.md), and test/replay.test.ts must stay green.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { LifecycleActivities, PolicyActivities, ReferenceCount, RestoreEmail } from '../activities/types';
import {
  InteractionDataExpiresAt,
  InteractionDataProblem,
  InteractionDataState,
  MessageKindAttr,
  MessageTags,
} from '../src/shared/searchAttributes';
import type {
  EraseUserAccepted,
  EraseUserRequest,
  LifecycleProblem,
  LifecycleState,
  MessageKind,
  PendingRestore,
  CallbackDelivery,
  RestoreDoneSignal,
  RestoreOutcome,
  RestoreSignal,
  ResumeOutcome,
  StopOutcome,
  StopSignal,
} from '../src/shared/types';
import {
  eraseUserUpdate,
  lateInteractionsSignal,
  messageDetailsSignal,
  messageErasedSignal,
  referencesChangedSignal,
  restoreDoneSignal,
  restoreSignal,
  restoreUpdate,
  resumeSignal,
  resumeUpdate,
  retryUpdate,
  statusQuery,
  stopSignal,
  stopUpdate,
  CALLBACK_ACTIVITY_OPTIONS,
} from './definitions';
import { MOVES_TASK_QUEUE } from '../src/shared/workflowId';
import { actorDetails, moveSummary, timerSummary } from './actorDetails';
import { isRecord, isText, requireInput } from './workflowInput';
import {
  initialState,
  isAvailable,
  LifecycleMachine,
  statusOf,
  upgradeCarried,
  type ActorState,
  type InboxEvent,
} from './lifecycleMachine';

export type { ActorState } from './lifecycleMachine';
export { statusOf } from './lifecycleMachine';

/** Failures no retry can fix: the actor shows a problem and waits for an operator instead. */
export const PROBLEM_FAILURE_TYPES = ['ChunkIntegrityError', 'ArchiveConflictError', 'StaleAttemptError'] as const;

/** Patch ids (docs/WORKFLOWS.md): each guards commands that histories recorded before it do not hold. */
const PATCH_RESUME_GUARDS = 'resume-guards-in-actor';
const PATCH_KEEP_RESTORES = 'restore-requests-kept';
const PATCH_RESUME_WINS = 'queued-resume-wins-over-expiry';
const PATCH_SLEEP_WHEN_EXPIRED = 'expired-actor-sleeps';
const PATCH_EXPIRE_IN_ONE_ACTIVITY = 'expiry-in-one-activity';
const PATCH_FIRST_STOP_PUBLISHES = 'first-stop-publishes';
const PATCH_DEADLINES_FROM_ACTIVITIES = 'deadlines-from-activities';
const PATCH_MOVES_QUEUE = 'moves-task-queue';
const PATCH_ERASE_ANSWERED_WHEN_TAKEN = 'erase-answered-when-taken';

const retryForever = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' } as const;

const db = proxyActivities<LifecycleActivities>({ startToCloseTimeout: '1m', retry: retryForever });
// Moving rows can take long; a short heartbeat timeout lets a new worker resume quickly from the
// heartbeated cursor when the one running it dies.
const mover = proxyActivities<LifecycleActivities>({
  startToCloseTimeout: '12h',
  heartbeatTimeout: '15s',
  retry: { ...retryForever, nonRetryableErrorTypes: [...PROBLEM_FAILURE_TYPES] },
});
const mailer = proxyActivities<LifecycleActivities>({
  startToCloseTimeout: '1m',
  retry: { ...retryForever, maximumInterval: '10m' },
});
const caller = proxyActivities<LifecycleActivities>(CALLBACK_ACTIVITY_OPTIONS);
// A user's erasure reads and rewrites chunks like a move, and heartbeats like one.
const eraser = proxyActivities<LifecycleActivities>({ startToCloseTimeout: '12h', heartbeatTimeout: '15s', retry: retryForever });
// Only for histories recorded before deadlines came back with the activities that need them: local
// activities beside Updates and continue-as-new made histories that did not replay (docs/WORKFLOWS.md).
const policy = proxyLocalActivities<PolicyActivities>({ startToCloseTimeout: '10s' });

export interface LifecycleInput {
  kind: MessageKind;
  id: string;
  /** Set only by continue-as-new. */
  carried?: ActorState;
}

type Reply = { ok: true; value: unknown } | { ok: false; reason: string };

function nowIso(): string {
  return new Date(Date.now()).toISOString();
}

function instantOf(value: unknown, fallback: string): string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? new Date(Date.parse(value)).toISOString() : fallback;
}

/** The problem a failed activity leaves, or null when the failure is not one an operator must fix. */
function problemOf(activity: string, err: unknown): LifecycleProblem | null {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) return null;
  const cause = err.cause;
  const type = cause.type ?? 'Error';
  if (!cause.nonRetryable && !(PROBLEM_FAILURE_TYPES as readonly string[]).includes(type)) return null;
  return { activity, type, error: cause.message, since: nowIso() };
}

export async function interactionDataLifecycle(input: LifecycleInput): Promise<void> {
  requireInput(
    isRecord(input) && (input.kind === 'campaign' || input.kind === 'canvas') && isText(input.id),
    'interactionDataLifecycle',
    '{kind: "campaign" | "canvas", id}',
  );
  const s: ActorState = input.carried ? upgradeCarried(input.carried) : initialState(input.kind, input.id);
  const m = new LifecycleMachine(s);
  /** Outcomes of inbox events an Update waits for; never carried (handlers finish before continue-as-new). */
  const replies = new Map<string, Reply>();
  let ready = input.carried !== undefined;
  /** Set on a first run for a message no one ever defined, stopped or sent events for. */
  let unknownMessage = false;
  let problemShown = Boolean(s.problem);

  /** The Web UI's "Current details": no command, so it is set as often as anything changes. */
  function refreshDetails(): void {
    setCurrentDetails(actorDetails(s));
  }

  async function awaitReply(event: InboxEvent & { replyTo?: string }): Promise<unknown> {
    const key = uuid4();
    event.replyTo = key;
    s.inbox.push(event);
    await condition(() => replies.has(key));
    const reply = replies.get(key) as Reply;
    replies.delete(key);
    if (!reply.ok) throw ApplicationFailure.create({ type: 'RequestRefused', message: reply.reason, nonRetryable: true });
    return reply.value;
  }

  function answer(event: InboxEvent, reply: Reply): void {
    if ('replyTo' in event && event.replyTo) replies.set(event.replyTo, reply);
  }

  // ---- stop ----
  setHandler(stopSignal, (payload) => {
    s.inbox.push({ type: 'stop', stoppedAt: instantOf(payload?.stoppedAt, nowIso()) });
  });
  setHandler(
    stopUpdate,
    async (payload): Promise<StopOutcome> => {
      const stoppedAt = instantOf(payload?.stoppedAt, nowIso());
      return (await awaitReply({ type: 'stop', stoppedAt })) as StopOutcome;
    },
    {
      validator: (payload?: StopSignal) => {
        if (payload?.stoppedAt !== undefined && Number.isNaN(Date.parse(payload.stoppedAt))) {
          throw new Error(`stoppedAt ${JSON.stringify(payload.stoppedAt)} is not an ISO-8601 instant`);
        }
      },
    },
  );

  // ---- resume ----
  setHandler(resumeSignal, () => {
    s.inbox.push({ type: 'resume', receivedAt: nowIso() });
  });
  setHandler(
    resumeUpdate,
    async (_payload): Promise<ResumeOutcome> => (await awaitReply({ type: 'resume', receivedAt: nowIso() })) as ResumeOutcome,
    {
      // Refused before anything is recorded when the data is already gone; a resume accepted here is still
      // decided by the loop, in order with the deadline, and may yet be refused there.
      validator: (_payload) => {
        if (!ready) return;
        const refusal = m.resumeRefusal();
        if (refusal) throw new Error(refusal);
      },
    },
  );

  // ---- restore ----
  function restoreRequest(payload: RestoreSignal | undefined): PendingRestore {
    return {
      requestId: payload?.requestId || uuid4(),
      requestedBy: payload?.requestedBy ?? '',
      requestedAt: nowIso(),
      ...(payload?.notifyWorkflowId ? { notifyWorkflowId: payload.notifyWorkflowId } : {}),
      ...(payload?.callbackUrl ? { callbackUrl: payload.callbackUrl } : {}),
    };
  }

  /** Keeps an accepted request where a new run after a terminate or reset finds it. */
  async function keep(request: PendingRestore): Promise<void> {
    if (!patched(PATCH_KEEP_RESTORES)) return;
    await db.keepRestoreRequest({ kind: s.kind, id: s.id, request });
  }

  /** A duplicate id changes nothing and is answered as the first time: accepted while still pending. */
  async function takeRestore(request: PendingRestore): Promise<RestoreOutcome> {
    const taken = m.requestRestore(request);
    if (taken === 'accepted' && s.problem) {
      // Accepted, but no restore runs until an operator retries: the requester is told now, not never.
      const notice = m.problemNotice(request);
      if (notice) queueEmails([notice]);
      notify([request], { outcome: 'failed', rowCount: 0, reason: `${s.problem.type}: ${s.problem.error}` });
    }
    refreshDetails();
    if (taken === 'accepted') await keep(request);
    if (taken === 'already_available') s.inbox.push({ type: 'restore', request }); // refused in order, as a signal
    const pending = s.pendingRestores.some((r) => r.requestId === request.requestId);
    return { requestId: request.requestId, outcome: pending || taken === 'accepted' ? 'accepted' : 'already_available', state: s.state };
  }

  setHandler(restoreSignal, (payload) => {
    const take = (): void => {
      if (!unknownMessage) void takeRestore(restoreRequest(payload));
    };
    // Taken at once when the actor is ready, so its place among other events is the signal's own.
    if (ready) take();
    else void condition(() => ready).then(take);
  });
  setHandler(
    restoreUpdate,
    async (payload): Promise<RestoreOutcome> => {
      await condition(() => ready);
      if (unknownMessage) {
        throw ApplicationFailure.create({
          type: 'UnknownMessage',
          message: `no ${s.kind} ${JSON.stringify(s.id)}: it was never defined, stopped or sent events for`,
          nonRetryable: true,
        });
      }
      return takeRestore(restoreRequest(payload));
    },
    {
      validator: (payload?: RestoreSignal) => {
        if (typeof payload?.requestedBy !== 'string')
          throw new Error('requestedBy must be a string (an e-mail address, or empty for none)');
        if (payload.requestId !== undefined && (typeof payload.requestId !== 'string' || payload.requestId.length > 128)) {
          throw new Error('requestId must be a string of at most 128 characters');
        }
        if (
          payload.callbackUrl !== undefined &&
          (typeof payload.callbackUrl !== 'string' || !/^https?:\/\/.{1,1990}$/.test(payload.callbackUrl))
        ) {
          throw new Error('callbackUrl must be an http(s) URL of at most 2000 characters');
        }
      },
    },
  );

  // ---- the rest ----
  setHandler(referencesChangedSignal, () => {
    s.inbox.push({ type: 'referencesChanged' });
  });
  setHandler(messageDetailsSignal, (payload) => {
    s.inbox.push({ type: 'details', name: payload?.name, tags: payload?.tags });
  });
  setHandler(retryUpdate, async (): Promise<{ retried: string }> => (await awaitReply({ type: 'retry' })) as { retried: string }, {
    validator: () => {
      if (!s.problem) throw new Error('nothing to retry: the actor has no problem');
    },
  });
  setHandler(statusQuery, () => statusOf(s));
  // From the worker's dispatcher of ingestion's notes (src/storage/lateWakeups.ts); one queued is enough.
  setHandler(lateInteractionsSignal, () => {
    if (!s.inbox.some((e) => e.type === 'late')) s.inbox.push({ type: 'late' });
  });

  // ---- a user's erasure ----
  setHandler(
    eraseUserUpdate,
    async (request: EraseUserRequest): Promise<EraseUserAccepted> => {
      m.requestErasure(request);
      refreshDetails();
      if (patched(PATCH_ERASE_ANSWERED_WHEN_TAKEN)) {
        // Answered once the loop has taken the erasure (and so scheduled its activity), never before:
        // answered at once, the Update's completion and the loop's activity came out in an order that
        // depended on how the workflow task was cut into activations, which a new worker after a
        // timed-out task cut differently from the replay (CI: TMPRL1100 "Update machine does not handle
        // this event: ActivityTaskScheduled"). An actor in the middle of a move answers after it.
        await condition(() => !s.inbox.some((e) => e.type === 'erase' && e.request.requestId === request.requestId));
      }
      return { requestId: request.requestId, state: s.state };
    },
    {
      validator: (request?: EraseUserRequest) => {
        for (const field of ['requestId', 'userId', 'notifyWorkflowId'] as const) {
          const v = request?.[field];
          if (typeof v !== 'string' || v.length === 0 || v.length > 255) throw new Error(`${field} must be a string of 1-255 characters`);
        }
        if (typeof request?.erasedThrough !== 'string' || Number.isNaN(Date.parse(request.erasedThrough))) {
          throw new Error('erasedThrough must be an ISO-8601 instant');
        }
      },
    },
  );

  /**
   * Makes a transition visible: search attributes at once, then the availability row features read.
   * With `becoming`, the actor itself takes that state only once the row records it.
   */
  async function publish(becoming?: LifecycleState): Promise<void> {
    s.revision += 1;
    const state = becoming ?? s.state;
    const expiresAt = showState(state);
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

  /** Sets the search attributes for `state`; returns the deadline they show. */
  function showState(state: LifecycleState): string | null {
    const expiresAt = state === 'stopped' || state === 'retained' ? s.dueAt : null;
    const pairs: SearchAttributeUpdatePair[] = [
      { key: InteractionDataState, value: state },
      { key: MessageKindAttr, value: s.kind },
      { key: MessageTags, value: s.tags.length > 0 ? s.tags : null },
      { key: InteractionDataExpiresAt, value: expiresAt ? new Date(expiresAt) : null },
    ];
    if (s.problem || problemShown) {
      pairs.push({ key: InteractionDataProblem, value: s.problem ? s.problem.type : null });
      problemShown = Boolean(s.problem);
    }
    upsertSearchAttributes(pairs);
    return expiresAt;
  }

  /** Not awaited: the actor goes on answering requests while the e-mail is retried. */
  function sendEmail(email: RestoreEmail): void {
    void mailer.sendRestoreEmail(email).then(
      () => {
        s.unsentEmails = s.unsentEmails.filter((e) => e.restoreId !== email.restoreId || e.to !== email.to || e.failure !== email.failure);
      },
      (err: unknown) => log.error('restore e-mail failed for good', { restoreId: email.restoreId, error: String(err) }),
    );
  }

  function queueEmails(emails: RestoreEmail[]): void {
    for (const email of emails) {
      s.unsentEmails.push(email);
      sendEmail(email);
    }
  }

  /**
   * Calls a requester's callback beside the loop, as e-mails are sent: carried as unsent through
   * continue-as-new and sent again by the next run under the same delivery id.
   */
  function sendCallback(delivery: CallbackDelivery): void {
    void caller.deliverCallback(delivery).then(
      () => {
        s.unsentCallbacks = (s.unsentCallbacks ?? []).filter((c) => c.deliveryId !== delivery.deliveryId);
      },
      (err: unknown) => {
        s.unsentCallbacks = (s.unsentCallbacks ?? []).filter((c) => c.deliveryId !== delivery.deliveryId);
        log.error('restore callback given up', { url: delivery.url, deliveryId: delivery.deliveryId, error: String(err) });
      },
    );
  }

  /** Tells the workflows that asked to hear about these requests (one gone away is only logged), and calls their callbacks. */
  function notify(requests: readonly PendingRestore[], done: Omit<RestoreDoneSignal, 'requestId' | 'kind' | 'id'>): void {
    for (const r of requests) {
      if (r.callbackUrl) {
        const event = done.outcome === 'restored' ? 'restore.completed' : 'restore.failed';
        const delivery: CallbackDelivery = {
          url: r.callbackUrl,
          deliveryId: `${r.requestId}/${s.kind}:${s.id}/${event}`,
          event,
          body: { requestId: r.requestId, kind: s.kind, id: s.id, name: s.name, requestedBy: r.requestedBy || null, at: nowIso(), ...done },
        };
        s.unsentCallbacks = [...(s.unsentCallbacks ?? []), delivery];
        sendCallback(delivery);
      }
      if (!r.notifyWorkflowId) continue;
      const payload: RestoreDoneSignal = { kind: s.kind, id: s.id, requestId: r.requestId, ...done };
      void getExternalWorkflowHandle(r.notifyWorkflowId)
        .signal(restoreDoneSignal, payload)
        .catch((err: unknown) =>
          log.warn('could not tell the requesting workflow', { workflowId: r.notifyWorkflowId, error: String(err) }),
        );
    }
  }

  /** Runs a step's activity; a failure no retry can fix becomes the actor's problem. */
  async function guarded<T>(activity: string, run: () => Promise<T>): Promise<T | null> {
    try {
      return await run();
    } catch (err) {
      const problem = problemOf(activity, err);
      if (!problem) throw err;
      log.error('step cannot proceed without an operator', { activity, type: problem.type, error: problem.error });
      const { emails } = m.failed(problem);
      queueEmails(emails);
      if (s.state === 'restoring' || s.state === 'expired') {
        notify(s.pendingRestores, { outcome: 'failed', rowCount: 0, reason: `${problem.type}: ${problem.error}` });
      }
      await publish();
      return null;
    }
  }

  async function applyEvent(e: InboxEvent): Promise<void> {
    switch (e.type) {
      case 'stop': {
        if (m.stopApplies(e.stoppedAt)) {
          // Planned before any field changes, so a status query never sees a half-made transition.
          if (patched(PATCH_DEADLINES_FROM_ACTIVITIES)) {
            s.revision += 1;
            const record = { kind: s.kind, id: s.id, stoppedAt: e.stoppedAt, generation: s.generation, revision: s.revision };
            const { expiresAt } = await db.recordStop(record);
            m.stop(e.stoppedAt, expiresAt);
            showState(s.state);
          } else {
            const dueAt = await policy.planDeadline({ from: e.stoppedAt, purpose: 'expiry' });
            m.stop(e.stoppedAt, dueAt);
            await publish();
          }
          answer(e, {
            ok: true,
            value: { changed: true, state: s.state, stoppedAt: s.stoppedAt, expiresAt: s.dueAt } satisfies StopOutcome,
          });
        } else {
          const expiresAt = s.state === 'stopped' || s.state === 'retained' ? s.dueAt : null;
          answer(e, { ok: true, value: { changed: false, state: s.state, stoppedAt: s.stoppedAt, expiresAt } satisfies StopOutcome });
        }
        return;
      }
      case 'resume': {
        if ((s.state === 'stopped' || s.state === 'retained') && patched(PATCH_RESUME_GUARDS)) {
          // Rule 9 for the message's own audiences, checked by the actor so every caller gets it.
          const refusal = await db.checkResumeGuards({ kind: s.kind, id: s.id });
          if (refusal) {
            s.lastRefusal = { signal: 'resume', reason: refusal, at: nowIso() };
            answer(e, { ok: false, reason: refusal });
            return;
          }
        }
        const outcome = m.resume(e.receivedAt);
        if (!outcome.ok) {
          log.info('resume refused', { reason: outcome.reason, state: s.state });
          answer(e, outcome);
          return;
        }
        if (outcome.value) await publish();
        answer(e, { ok: true, value: { changed: outcome.value, state: s.state } satisfies ResumeOutcome });
        return;
      }
      case 'restore':
        m.applyRestore(e.request, nowIso());
        return;
      case 'referencesChanged':
        m.referencesChanged();
        return;
      case 'details':
        m.details(e.name, e.tags);
        await publish();
        return;
      case 'erase': {
        // Between moves: no archive or restore of this message runs while its rows are erased.
        const { requestId, userId, erasedThrough, notifyWorkflowId } = e.request;
        const { ok } = await eraser.eraseUserInMessage({ kind: s.kind, id: s.id, requestId, userId, erasedThrough });
        // Awaited: the loop may continue-as-new next, and the report must have gone out by then.
        await getExternalWorkflowHandle(notifyWorkflowId)
          .signal(messageErasedSignal, { kind: s.kind, id: s.id, requestId, ok })
          .catch((err: unknown) => log.warn('could not tell the erasure workflow', { workflowId: notifyWorkflowId, error: String(err) }));
        return;
      }
      case 'late':
        // Ignored unless asleep: an actor that is moving rows or has a sweep due takes late rows then,
        // and data that is available again needs no sweep.
        m.lateInteractions(nowIso());
        return;
      case 'retry': {
        const what = s.problem ? s.problem.activity : 'nothing';
        m.retry();
        await publish();
        answer(e, { ok: true, value: { retried: what } });
        return;
      }
    }
  }

  async function checkReferencesAndMaybeArchive(): Promise<void> {
    const {
      count,
      checkedAt,
      nextCheckAt: nextCheck,
      audiences,
      archivingHeld,
    } = patched(PATCH_DEADLINES_FROM_ACTIVITIES)
      ? await db.countReferences.executeWithOptions(moveOptions('count references before expiry'), [{ kind: s.kind, id: s.id }])
      : await countReferencesWithLocalDeadline();
    // A resume that arrived while the references were counted is decided now, before anything moves.
    const resumeQueued = m.hasQueuedResume() && patched(PATCH_RESUME_WINS);
    // Only a result that carries a hold holds: results recorded before the brake never do, so their
    // histories take the same path as before and need no patch.
    const decision = m.referencesCounted(count, checkedAt, nextCheck, resumeQueued, audiences, archivingHeld ?? null);
    if (decision === 'resume-first') return;
    if (decision === 'held') {
      log.info('due, but archiving is paused', { pausedBy: archivingHeld?.pausedBy, recheckAt: s.dueAt });
      await publish();
      return;
    }
    if (decision === 'archiving' && patched(PATCH_EXPIRE_IN_ONE_ACTIVITY)) return expireInOneActivity();
    await publish(); // retained, or unavailable before a single row moves
    if (decision === 'archiving') await finishArchive();
  }

  /** How histories recorded before PATCH_DEADLINES_FROM_ACTIVITIES counted: the next check from a local activity. */
  async function countReferencesWithLocalDeadline(): Promise<ReferenceCount> {
    const count = await db.countActiveReferences({ kind: s.kind, id: s.id });
    const checkedAt = nowIso();
    const nextCheckAt = count > 0 ? await policy.planDeadline({ from: checkedAt, purpose: 'cleanup' }) : '';
    return { count, checkedAt, nextCheckAt, audiences: [] };
  }

  /**
   * A move's options, and the reference count's that decides one: its summary, and the moves task queue,
   * whose slots bound what a worker runs at once and whose rate (MOVES_PER_SECOND) paces an expiry from
   * its first step, not only its rows.
   */
  function moveOptions(summary: string): { summary: string; taskQueue?: string } {
    return patched(PATCH_MOVES_QUEUE) ? { summary, taskQueue: MOVES_TASK_QUEUE } : { summary };
  }

  /**
   * Records, archives and records again in one activity (expireMessage): a third of the workflow tasks
   * and activities of the three it replaces, which is what an expiry costs Temporal (docs/SCALING.md).
   * The availability row still says unavailable before a row moves and expired before the actor does.
   */
  async function expireInOneActivity(): Promise<void> {
    s.revision += 1;
    showState('archiving');
    const input = { kind: s.kind, id: s.id, generation: s.generation, stoppedAt: s.stoppedAt, revision: s.revision };
    const result = await guarded('archiveInteractions', () =>
      mover.expireMessage.executeWithOptions(moveOptions(moveSummary('archive', s.generation)), [input]),
    );
    if (!result) return;
    s.revision += 1;
    const { hotTableLeft, nextSweepAt, ...manifest } = result;
    m.archived(manifest, nextSweepAt, sleeps(hotTableLeft), nowIso());
    showState('expired');
    s.state = 'expired';
  }

  async function finishArchive(): Promise<void> {
    if (await moveHotRows()) await publish('expired'); // as after a restore: the row first, then the actor's status
  }

  /**
   * Whether the actor may sleep without a timer after a move: no hot table was left for late rows, and
   * ingestion's wake-ups will say when one is made (src/storage/lateWakeups.ts).
   */
  function sleeps(hotTableLeft: boolean | undefined): boolean {
    return patched(PATCH_SLEEP_WHEN_EXPIRED) && hotTableLeft === false;
  }

  /**
   * Moves the message's hot rows into its generation: the archive itself, or a sweep of late interactions
   * of an expired message (stored hot but invisible), when ingestion's wake-up says they came or, with a
   * hot table left, one cleanup interval later. False when the move became the actor's problem.
   */
  async function moveHotRows(): Promise<boolean> {
    const summary = moveSummary(s.state === 'expired' ? 'sweep' : 'archive', s.generation);
    const result = await guarded('archiveInteractions', () =>
      mover.archiveInteractions.executeWithOptions(moveOptions(summary), [{ kind: s.kind, id: s.id, generation: s.generation }]),
    );
    if (!result) return false;
    // Results recorded before the activity planned the next sweep lack it; their histories hold the local
    // activity that planned it instead, so the choice follows the history and replays.
    const { hotTableLeft, nextSweepAt, ...manifest } = result;
    const nextSweep = nextSweepAt ?? (await policy.planDeadline({ from: nowIso(), purpose: 'cleanup' }));
    m.archived(manifest, nextSweep, sleeps(hotTableLeft), nowIso());
    return true;
  }

  async function restore(): Promise<void> {
    s.state = 'restoring';
    await publish();
    const summary = await guarded('restoreInteractions', () =>
      mover.restoreInteractions.executeWithOptions(moveOptions(moveSummary('restore', s.generation)), [
        { kind: s.kind, id: s.id, generation: s.generation },
      ]),
    );
    if (!summary) return;
    // The deadline, another full TTL, comes with the result; one recorded before it did not (as in moveHotRows).
    const { completedAt: restoredAt, expiresAt, ...restored } = summary;
    const completedAt = restoredAt ?? nowIso();
    const dueAt = expiresAt ?? (await policy.planDeadline({ from: completedAt, purpose: 'expiry' }));
    s.stoppedAt = completedAt;
    s.dueAt = dueAt;
    s.archive = null;
    // The row every feature reads says the data is back before the actor's status does, so a client
    // that saw `stopped` never finds the data still unavailable.
    await publish('stopped');
    // Requests that came in until now, while the row was being written too, are answered by this restore.
    const { served, emails } = m.restored(restored, completedAt, dueAt);
    queueEmails(emails);
    notify(served, { outcome: 'restored', rowCount: restored.rowCount, reason: null });
    // Every served id, kept or not yet: a keep still under way then finds its request settled.
    if (served.length > 0 && patched(PATCH_KEEP_RESTORES)) {
      const ids = served.map((r) => r.requestId);
      await db.settleRestoreRequests({ kind: s.kind, id: s.id, requestIds: ids });
    }
  }

  if (input.carried) {
    for (const email of s.unsentEmails) sendEmail(email);
    for (const delivery of s.unsentCallbacks ?? []) sendCallback(delivery);
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
    for (const r of details.pendingRestores ?? []) {
      if (s.seenRestoreIds.includes(r.requestId)) continue;
      s.seenRestoreIds = [...s.seenRestoreIds, r.requestId];
      s.pendingRestores = [...s.pendingRestores, r];
    }
    if (details.known === false && !details.persisted && s.inbox.every((e) => e.type === 'restore')) {
      // Started only by restores of an id no one defined: refuse them and leave no actor behind.
      unknownMessage = true;
      ready = true;
      await condition(allHandlersFinished);
      return;
    }
    ready = true;
    // A first run started by its stop (a service's stop, or the rollout's backlog) publishes once, as
    // stopped, instead of as active and then at once as stopped.
    const first = s.inbox[0];
    const stopNext = first?.type === 'stop' && m.stopApplies(first.stoppedAt);
    if (!(stopNext && patched(PATCH_FIRST_STOP_PUBLISHES))) await publish();
  }

  for (;;) {
    refreshDetails();
    if (workflowInfo().continueAsNewSuggested && s.inbox.length === 0) {
      // E-mails still being sent are carried as unsent and handed to the next run, which sends them
      // again under the same idempotency key: waiting here would leave signals unanswered while a
      // mail provider is down.
      await condition(allHandlersFinished);
      await continueAsNew<typeof interactionDataLifecycle>({ kind: s.kind, id: s.id, carried: s });
    }

    const step = m.nextStep(Date.now());
    switch (step.type) {
      case 'apply':
        s.inbox.shift();
        await applyEvent(step.event);
        break;
      case 'wait':
        if (step.until === null) {
          // Only what the history records wakes the loop. Not Temporal's continue-as-new suggestion alone:
          // it also comes with the task of an Update its validator rejects, which the history does not keep,
          // so a continue-as-new decided there cannot be replayed (test/continueAsNew.test.ts). The next
          // event continues as new at the top of the loop instead; nothing else grows the history meanwhile.
          await condition(() => m.wakes());
        } else {
          await condition(() => m.wakes(), Date.parse(step.until) - Date.now(), { summary: timerSummary(s) });
        }
        break;
      case 'checkReferences':
        await checkReferencesAndMaybeArchive();
        break;
      case 'archive':
        // Only reached after a restart from a persisted 'archiving' record, or a retry: finish the move.
        await finishArchive();
        break;
      case 'sweep':
        await moveHotRows();
        break;
      case 'restore':
        await restore();
        break;
    }
  }
}
