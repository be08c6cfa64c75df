/**
 * Activities of the bulk-restore workflow. Each message is restored by its own actor (the only writer of
 * its availability): requestBulkItemRestore asks it with the actor's `restore` Update, under a request id
 * derived from the bulk request and naming the bulk workflow to signal (`restoreDone`) once the restore
 * is done or cannot proceed; it returns the actor's answer at once and watches nothing. A retried attempt
 * asks again with the same id, which the actor answers without queuing it twice.
 *
 * restoreBulkItem is the mechanism before it (bulk workflows that recorded no `bulk-restore-told-by-actor`
 * marker still schedule it): it signals the actor, then watches its availability record and its `status`
 * query until the request has been served, heartbeating meanwhile.
 */
import { Context } from '@temporalio/activity';
import {
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../src/db/knex';
import type { Logger } from '../src/logger';
import type { CompletedRestore, LifecycleState, LifecycleStatus, MessageRef, RestoreOutcome, RestoreSignal } from '../src/shared/types';
import { actorStartOptions } from '../src/client/actorStart';
import { LIFECYCLE_WORKFLOW_TYPE, lifecycleWorkflowId } from '../src/shared/workflowId';
import {
  availabilityRevision,
  itemCounts,
  listItems,
  pendingPage,
  previewSelection,
  recordItemResult,
  registerItems,
  type RegisterProgress,
} from '../src/bulk/store';
import { renderSummaryEmail, SUMMARY_LIST_LIMITS, summaryEmailKey, type SummaryMailer } from '../src/bulk/summaryEmail';
import type {
  BulkItemResult,
  BulkPreviewInput,
  BulkRestorePreview,
  BulkSelection,
  BulkSelectionSummary,
  RegisterItemsResult,
} from '../src/bulk/types';
import { restoreSignal, restoreUpdate, statusQuery } from '../workflows/definitions';
import type { interactionDataLifecycle } from '../workflows/lifecycle';

export interface BulkRestoreActivityDeps {
  db: Db;
  /** Talks to the actors: signal-with-start, status query, describe. */
  temporal: Client;
  mailer: SummaryMailer;
  log?: Logger;
}

export interface RestoreBulkItemInput extends MessageRef {
  executionKey: string;
  actorRequestId: string;
  failAfterAttempts: number;
  messageTimeoutMs: number;
}

export interface RequestBulkItemInput extends MessageRef {
  actorRequestId: string;
  /** The bulk workflow's own ID: the actor signals `restoreDone` to it. */
  notifyWorkflowId: string;
}

/** The actor's answer to one message's restore request. */
export interface BulkItemRequestAnswer {
  /** `accepted`: a `restoreDone` signal follows; `unknown`: no one ever defined the message. */
  outcome: 'accepted' | 'already_available' | 'unknown';
  /** The actor's state when it answered; null for an unknown message. */
  state: LifecycleState | null;
  reason: string | null;
  /**
   * Attempt that got the answer. After a first attempt, `already_available` may also mean that the
   * request an earlier attempt got accepted has been served since, its `restoreDone` possibly still on
   * its way: the actor answers a request id it has seen the same either way.
   */
  attempt: number;
}

export interface SummaryInput {
  executionKey: string;
  requestId: string;
  requestedBy: string;
  selection: BulkSelectionSummary;
  rowsRestored: number;
  startedAt: string;
  finishedAt: string;
}

/** Functions rather than methods: a worker registers them one by one, detached from the object. */
export interface BulkRestoreActivities {
  registerBulkItems: (input: { executionKey: string; selection: BulkSelection }) => Promise<RegisterItemsResult>;
  nextBulkItems: (input: { executionKey: string; after: MessageRef | null; limit: number }) => Promise<MessageRef[]>;
  requestBulkItemRestore: (input: RequestBulkItemInput) => Promise<BulkItemRequestAnswer>;
  /** Before the `bulk-restore-told-by-actor` patch: signal, then watch until served. */
  restoreBulkItem: (input: RestoreBulkItemInput) => Promise<BulkItemResult>;
  recordBulkItemResult: (input: { executionKey: string; result: BulkItemResult }) => Promise<void>;
  /** Resolves with the instant the e-mail was handed over. */
  sendBulkRestoreSummary: (input: SummaryInput) => Promise<string>;
  previewBulkRestore: (input: BulkPreviewInput) => Promise<BulkRestorePreview>;
}

/** What a retried attempt needs to know about the earlier ones; kept in the heartbeat. */
interface WatchState {
  signalled: boolean;
  /** The request was seen queued in the actor: whatever restore clears it has served it. */
  sawPending: boolean;
  /** The actor's last completed restore before the signal, to recognise the one that follows. */
  baseline: Pick<CompletedRestore, 'requestId' | 'completedAt'> | null;
  startedAt: number;
  signalledAt: number | null;
}

/** The activity shows it is alive this often while the actor's answer is awaited. */
const REQUEST_HEARTBEAT_MS = 5_000;

/** How often the watch reads the message's availability record (one primary-key read). */
const RECORD_POLL_MS = 400;
/** How often the watch asks the actor itself, whatever the record says. */
const ACTOR_CHECK_EVERY_MS = 10_000;
/**
 * How often it describes the actor's execution for a restore activity that keeps failing: the actor
 * retries after 1, 2, 4, 8... s, so a few failed attempts take this long anyway.
 */
const STUCK_CHECK_EVERY_MS = 15_000;
/** The actor's activities a restore waits for: its start-up, an archive still running, the restore itself. */
const BLOCKING_ACTIVITIES: readonly string[] = ['loadMessageDetails', 'recordAvailability', 'archiveInteractions', 'restoreInteractions'];
/** Instants in the actor's status come from workflow time (the server's clock); allow for skew with this host. */
const CLOCK_SKEW_MS = 5_000;

function sameRestore(a: WatchState['baseline'], b: CompletedRestore | null): boolean {
  if (a === null || b === null) return a === null && b === null;
  return a.requestId === b.requestId && a.completedAt === b.completedAt;
}

/**
 * Whether the actor has turned our request down as "already available". An actor that has just been
 * started by the signal reports its initial state (revision 0) until it has loaded its record, and a
 * restore it refused may be followed by a new expiry before we look: hence both tests.
 */
function refusedSince(s: LifecycleStatus, watch: WatchState): boolean {
  if (s.available && s.revision > 0) return true;
  const refusal = s.lastRefusal;
  return refusal !== null && refusal.signal === 'restore' && Date.parse(refusal.at) >= (watch.signalledAt ?? 0) - CLOCK_SKEW_MS;
}

function completedSince(restore: CompletedRestore, watch: WatchState): boolean {
  return Date.parse(restore.completedAt) >= (watch.signalledAt ?? 0) - CLOCK_SKEW_MS;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Starts the message's actor for an Update with start, or uses the one running (what LifecycleClient's Updates do too). */
export function startActorOperation(ref: MessageRef): WithStartWorkflowOperation<typeof interactionDataLifecycle> {
  return new WithStartWorkflowOperation<typeof interactionDataLifecycle>(LIFECYCLE_WORKFLOW_TYPE, {
    ...actorStartOptions(ref),
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

export function createBulkRestoreActivities(deps: BulkRestoreActivityDeps): BulkRestoreActivities {
  const { db, temporal, mailer } = deps;

  /**
   * The actor's `restore` Update with start, as LifecycleClient.restore sends it, but with the bulk
   * execution's request id (`bulk/<request id>/<run id>`, which the client's validation of
   * caller-chosen ids does not admit) and refs already validated when the request was registered.
   */
  async function requestRestore(input: RequestBulkItemInput): Promise<BulkItemRequestAnswer> {
    const ctx = Context.current();
    const attempt = ctx.info.attempt;
    const ref: MessageRef = { kind: input.kind, id: input.id };
    // No requester: the bulk workflow sends one summary instead of one e-mail per message.
    const payload: RestoreSignal = { requestedBy: '', requestId: input.actorRequestId, notifyWorkflowId: input.notifyWorkflowId };
    const startWorkflowOperation = startActorOperation(ref);
    // The Update waits for the actor to take the request (and, for an actor that was not running, to
    // start from its record): a dead worker is noticed by the heartbeat rather than the start-to-close timeout.
    const beat = setInterval(() => ctx.heartbeat(), REQUEST_HEARTBEAT_MS);
    try {
      const answer: RestoreOutcome = await temporal.workflow.executeUpdateWithStart(restoreUpdate, {
        args: [payload],
        startWorkflowOperation,
      });
      return { outcome: answer.outcome, state: answer.state, reason: null, attempt };
    } catch (err) {
      const failure = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure ? err.cause : null;
      if (failure?.type === 'UnknownMessage') return { outcome: 'unknown', state: null, reason: failure.message, attempt };
      // Refused by the actor (its validator): no retry changes that.
      if (failure)
        throw ApplicationFailure.create({ type: failure.type ?? 'RequestRefused', message: failure.message, nonRetryable: true });
      throw err;
    } finally {
      clearInterval(beat);
    }
  }

  const actor = (ref: MessageRef): WorkflowHandle<typeof interactionDataLifecycle> =>
    temporal.workflow.getHandle<typeof interactionDataLifecycle>(lifecycleWorkflowId(ref));

  async function queryStatus(ref: MessageRef): Promise<LifecycleStatus | null> {
    try {
      return await actor(ref).query(statusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** Signal-with-start: an actor that was terminated (or never ran) starts from the recorded availability. */
  async function signalRestore(ref: MessageRef, requestId: string): Promise<void> {
    await temporal.workflow.signalWithStart(LIFECYCLE_WORKFLOW_TYPE, {
      ...actorStartOptions(ref),
      signal: restoreSignal,
      // No requester: the bulk workflow sends one summary instead of one e-mail per message.
      signalArgs: [{ requestedBy: '', requestId }],
    });
  }

  /** A reason to give up on the message, read from the actor's execution, or null while it is healthy. */
  async function stuckReason(ref: MessageRef, failAfterAttempts: number): Promise<string | null> {
    const d = await actor(ref).describe();
    if (d.status.name !== 'RUNNING') return `its lifecycle workflow is ${d.status.name.toLowerCase()}`;
    for (const p of d.raw.pendingActivities ?? []) {
      // Only what stands between the request and the data (another requester's e-mail may be retrying too).
      if (!BLOCKING_ACTIVITIES.includes(p.activityType?.name ?? '')) continue;
      const attempt = p.attempt ?? 1;
      const failure = p.lastFailure?.message;
      if (failure && attempt > failAfterAttempts) {
        return `${p.activityType?.name ?? 'an activity'} failed ${attempt - 1} times (it keeps retrying): ${failure}`;
      }
    }
    return null;
  }

  function result(ref: MessageRef, outcome: BulkItemResult['outcome'], rowCount: number, reason: string | null): BulkItemResult {
    return { kind: ref.kind, id: ref.id, outcome, rowCount, reason };
  }

  async function watchRestore(input: RestoreBulkItemInput): Promise<BulkItemResult> {
    const ctx = Context.current();
    const ref: MessageRef = { kind: input.kind, id: input.id };
    const mine = input.actorRequestId;
    const earlier = ctx.info.heartbeatDetails as WatchState | undefined;
    const watch: WatchState = earlier ?? { signalled: false, sawPending: false, baseline: null, startedAt: Date.now(), signalledAt: null };

    if (!watch.signalled) {
      const before = await queryStatus(ref);
      if (before?.lastRestore?.requestId === mine) return result(ref, 'restored', before.lastRestore.rowCount, null);
      const queued = before?.pendingRestores.some((p) => p.requestId === mine) ?? false;
      if (before && before.available && !queued) {
        // Registered as expired, restored since by another request: not touched.
        return result(ref, 'already_available', 0, `available (${before.state}) when the restore reached it`);
      }
      watch.baseline = before?.lastRestore
        ? { requestId: before.lastRestore.requestId, completedAt: before.lastRestore.completedAt }
        : null;
      watch.signalledAt = Date.now();
      await signalRestore(ref, mine);
      watch.signalled = true;
      ctx.heartbeat(watch);
    }

    // The actor's availability record moves (new revision) when it starts and finishes the restore: a
    // point read of it every few hundred ms is far cheaper than a Temporal query, so the actor itself is
    // asked only when the record has moved, and every ACTOR_CHECK_EVERY_MS in any case (the record does
    // not move for every case, e.g. an actor restarted from a terminated predecessor's record).
    let seen = await availabilityRevision(db, ref);
    let lastActorCheck = earlier ? 0 : Date.now(); // a retried attempt asks at once
    let lastStuckCheck = Date.now();
    let lastError: string | null = null;
    for (;;) {
      const now = Date.now();
      const periodic = now - lastActorCheck >= ACTOR_CHECK_EVERY_MS;
      let moved = false;
      try {
        const record = await availabilityRevision(db, ref);
        // Into `restoring` is not worth a query: the restore is under way, not done.
        moved = record !== seen && record !== null && !record.startsWith('restoring@');
        seen = record;
      } catch (err) {
        lastError = errorText(err);
      }
      if (moved || periodic) {
        lastActorCheck = now;
        try {
          const s = await queryStatus(ref);
          lastError = null;
          if (s === null) {
            // Gone between the signal and now (terminated and deleted): start it again, same request id.
            await signalRestore(ref, mine);
          } else if (s.pendingRestores.some((p) => p.requestId === mine)) {
            watch.sawPending = true;
          } else if (s.lastRestore?.requestId === mine) {
            return result(ref, 'restored', s.lastRestore.rowCount, null);
          } else if (
            s.lastRestore &&
            !sameRestore(watch.baseline, s.lastRestore) &&
            (watch.sawPending || completedSince(s.lastRestore, watch))
          ) {
            // Served by a restore that also answered other requests queued with ours (possibly before
            // this watch ever saw ours queued).
            return result(ref, 'restored', s.lastRestore.rowCount, null);
          } else if (!watch.sawPending && sameRestore(watch.baseline, s.lastRestore) && refusedSince(s, watch)) {
            // Not queued and no restore since the signal: the actor refused it because the data was
            // available when it arrived (a restore by someone else finished first).
            return result(ref, 'already_available', 0, `available (${s.state}) when the restore reached it`);
          }
        } catch (err) {
          // Temporal busy or briefly unreachable: keep watching, the deadline below bounds it.
          lastError = errorText(err);
          ctx.log.warn('watching a restore: status query failed', { message: `${ref.kind}:${ref.id}`, error: lastError });
        }
      }
      if (now - lastStuckCheck >= STUCK_CHECK_EVERY_MS) {
        lastStuckCheck = now;
        try {
          const reason = await stuckReason(ref, input.failAfterAttempts);
          if (reason) return result(ref, 'failed', 0, reason);
        } catch (err) {
          lastError = errorText(err);
        }
      }
      const waited = Date.now() - watch.startedAt;
      if (waited > input.messageTimeoutMs) {
        return result(
          ref,
          'failed',
          0,
          `not restored after ${Math.round(waited / 1000)} s` +
            (lastError ? ` (last error: ${lastError})` : '; its actor is still working on it'),
        );
      }
      ctx.heartbeat(watch);
      await ctx.sleep(RECORD_POLL_MS);
    }
  }

  return {
    async registerBulkItems({ executionKey, selection }) {
      const ctx = Context.current();
      return registerItems(db, executionKey, selection, {
        resumeFrom: ctx.info.heartbeatDetails as RegisterProgress | undefined,
        onPage: (p) => ctx.heartbeat(p),
      });
    },

    nextBulkItems: ({ executionKey, after, limit }) => pendingPage(db, executionKey, after, limit),

    requestBulkItemRestore: requestRestore,

    async restoreBulkItem(input) {
      const outcome = await watchRestore(input);
      await recordItemResult(db, input.executionKey, outcome);
      return outcome;
    },

    recordBulkItemResult: ({ executionKey, result: r }) => recordItemResult(db, executionKey, r),

    async sendBulkRestoreSummary(input) {
      const counts = await itemCounts(db, input.executionKey);
      const [restoredItems, failedItems, availableItems] = await Promise.all([
        listItems(db, input.executionKey, 'restored', SUMMARY_LIST_LIMITS.restored),
        listItems(db, input.executionKey, 'failed', SUMMARY_LIST_LIMITS.failed),
        listItems(db, input.executionKey, 'already_available', SUMMARY_LIST_LIMITS.alreadyAvailable),
      ]);
      const restored = counts.total - counts.pending - counts.alreadyAvailable - counts.failed;
      const { subject, text } = renderSummaryEmail({
        requestId: input.requestId,
        selection: input.selection,
        total: counts.total,
        restored,
        alreadyAvailable: counts.alreadyAvailable,
        failed: counts.failed,
        rowsRestored: input.rowsRestored,
        startedAt: input.startedAt,
        finishedAt: input.finishedAt,
        restoredItems,
        failedItems,
        availableItems,
      });
      return mailer.send({ idempotencyKey: summaryEmailKey(input.executionKey, input.requestedBy), to: input.requestedBy, subject, text });
    },

    previewBulkRestore: ({ selection, limit }) => previewSelection(db, selection, limit),
  };
}
