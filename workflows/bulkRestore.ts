/**
 * Bulk restore: every expired campaign and/or Canvas with a tag, or a list of messages, restored through
 * each message's own actor, with one summary e-mail at the end.
 *
 * 1. registering: an activity fixes the set of messages in MySQL (bulk_restore_items), classifying each as
 *    to restore, already available (reported, never touched) or unknown (failed).
 * 2. restoring: keyset pages of the pending items; each message is asked of its actor by a short
 *    requestBulkItemRestore activity (the actor's `restore` Update, with a request id derived from this
 *    execution and this workflow's ID to notify), then waits for the actor's `restoreDone` signal, at most
 *    `messageTimeoutMs`; at most `concurrency` messages at a time. Nothing polls MySQL or the actors.
 *    When Temporal suggests continue-as-new, no new message is started, the ones under way finish (their
 *    signals arrive in this run), and the next run carries the counters, the cursor and the unstarted rest
 *    of the page: the history stays small however many messages there are. Runs that recorded no
 *    `bulk-restore-told-by-actor` marker started their messages with restoreBulkItem, which watched the
 *    actor instead; replaying them takes that path.
 * 3. notifying: one summary e-mail (idempotency key per execution), then the final progress is the result.
 *
 * A worker restart at any point replays to the same place; an activity that was running is retried and
 * finds its actor's request by id, so nothing is restored or counted twice.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
  type WorkflowInfo,
} from '@temporalio/workflow';
import type { BulkItemRequestAnswer, BulkRestoreActivities } from '../activities/bulkRestore';
import {
  MAX_FAILURES_KEPT,
  refText,
  summariseSelection,
  type BulkItemResult,
  type BulkPreviewInput,
  type BulkRestoreInput,
  type BulkRestorePreview,
  type BulkRestoreProgress,
  type BulkRestoreState,
  type BulkSelection,
} from '../src/bulk/types';
import type { MessageRef, RestoreDoneSignal } from '../src/shared/types';
import { BULK_WATCH_TASK_QUEUE } from '../src/shared/workflowId';
import { bulkRestoreProgressQuery } from './bulkDefinitions';
import { CALLBACK_ACTIVITY_OPTIONS, restoreDoneSignal } from './definitions';
import type { LifecycleActivities } from '../activities/types';
import { isRecord, isText, requireInput } from './workflowInput';

/**
 * Patch id (docs/WORKFLOWS.md): a message is requested by requestBulkItemRestore and followed by the
 * actor's `restoreDone` signal; without the marker (histories recorded before it), by restoreBulkItem.
 */
const PATCH_TOLD_BY_ACTOR = 'bulk-restore-told-by-actor';

const retryForever = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' } as const;

const bookkeeping = proxyActivities<BulkRestoreActivities>({ startToCloseTimeout: '1m', retry: retryForever });
// Registering a tag of tens of thousands of messages takes a while; the heartbeat carries its cursor.
const registrar = proxyActivities<BulkRestoreActivities>({ startToCloseTimeout: '1h', heartbeatTimeout: '30s', retry: retryForever });
const mailer = proxyActivities<BulkRestoreActivities>({
  startToCloseTimeout: '1m',
  retry: { ...retryForever, maximumInterval: '10m' },
});
const caller = proxyActivities<Pick<LifecycleActivities, 'deliverCallback'>>(CALLBACK_ACTIVITY_OPTIONS);
const previewer = proxyActivities<BulkRestoreActivities>({
  startToCloseTimeout: '5m',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
});
// On the queue with slots of its own: the actor answers the Update only once its own activities (its
// start-up, keeping the request in MySQL) have run, so requests waiting on the actors' queue could take
// every slot those need. Short: nothing is watched; the answer comes in seconds.
const requester = proxyActivities<BulkRestoreActivities>({
  taskQueue: BULK_WATCH_TASK_QUEUE,
  startToCloseTimeout: '10m',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 20 },
});
/**
 * How long a retried request answered "already available" waits for the signal of a restore its earlier
 * attempt may have got accepted: the actor signals before it answers again, but the signal travels apart.
 */
const RETRIED_ANSWER_GRACE_MS = 30_000;

/** Pending items fetched per page: a few rounds of the concurrency, small enough to carry through continue-as-new. */
function pageSize(concurrency: number): number {
  return Math.max(100, concurrency * 3);
}

function nowIso(): string {
  return new Date(Date.now()).toISOString();
}

function initialState(input: BulkRestoreInput, info: WorkflowInfo): BulkRestoreState {
  const executionKey = `${input.requestId}/${info.firstExecutionRunId}`;
  return {
    executionKey,
    // One id for every message of this execution: each actor keeps its own list of ids it has seen, so a
    // retried signal is harmless, and a later execution of the same request gets new ids.
    actorRequestId: `bulk/${executionKey}`,
    selection: summariseSelection(input.selection),
    phase: 'registering',
    total: 0,
    restored: 0,
    alreadyAvailable: 0,
    failed: 0,
    rowsRestored: 0,
    failures: [],
    cursor: null,
    exhausted: false,
    queue: [],
    startedAt: nowIso(),
    finishedAt: null,
    summarySentAt: null,
    runs: 1,
  };
}

/** The id list is in MySQL after registration; later runs do not carry it. */
function slim(selection: BulkSelection): BulkSelection {
  return selection.by === 'ids' ? { by: 'ids', refs: [] } : selection;
}

function failureReason(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

export async function interactionDataBulkRestore(input: BulkRestoreInput): Promise<BulkRestoreProgress> {
  requireInput(
    isRecord(input) && isText(input.requestId) && isRecord(input.tuning) && (isRecord(input.carried) || isRecord(input.selection)),
    'interactionDataBulkRestore',
    '{requestId, selection, requestedBy, tuning} (as BulkRestoreClient starts it)',
  );
  const info = workflowInfo();
  const s: BulkRestoreState = input.carried ?? initialState(input, info);
  const { concurrency, failAfterAttempts, messageTimeoutMs } = input.tuning;
  /** Messages under way (requested or watched); never carried: they finish before continue-as-new. */
  const inFlight = new Set<string>();
  /** The actors' `restoreDone` for messages in flight, by `<kind>:<id>`, until the message is recorded. */
  const told = new Map<string, RestoreDoneSignal>();
  /** When each requested message in flight times out (workflow time, ms). */
  const deadlines = new Map<string, number>();
  let deadlineWatch = false;

  const restorer = proxyActivities<BulkRestoreActivities>({
    taskQueue: BULK_WATCH_TASK_QUEUE,
    // The activity bounds its own wait by messageTimeoutMs (kept across attempts); this is only a backstop.
    startToCloseTimeout: messageTimeoutMs + 10 * 60_000,
    // A dead worker's watch is picked up by another one quickly.
    heartbeatTimeout: '15s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 20 },
  });

  const progress = (): BulkRestoreProgress => ({
    requestId: input.requestId,
    workflowId: info.workflowId,
    selection: s.selection,
    requestedBy: input.requestedBy,
    phase: s.phase,
    total: s.total,
    done: s.restored + s.alreadyAvailable + s.failed,
    restored: s.restored,
    alreadyAvailable: s.alreadyAvailable,
    failed: s.failed,
    rowsRestored: s.rowsRestored,
    inFlight: [...inFlight],
    failures: s.failures,
    concurrency,
    startedAt: s.startedAt,
    finishedAt: s.finishedAt,
    summarySentAt: s.summarySentAt,
    runs: s.runs,
  });
  setHandler(bulkRestoreProgressQuery, progress);

  setHandler(restoreDoneSignal, (done) => {
    const key = refText(done);
    // Another execution of the same request (a failed one sent again) used other request ids; a message
    // no longer in flight was recorded already (timed out), and a later word on one in flight (a restore
    // after an operator's retry) does not change what was first said.
    if (done.requestId !== s.actorRequestId || !inFlight.has(key) || told.has(key)) return;
    told.set(key, done);
  });

  /**
   * One timer for every deadline rather than one per message: it sleeps until the earliest, and a message
   * that finished before its deadline costs no timer at all (deadlines come in the order messages start).
   */
  function watchDeadlines(): void {
    if (deadlineWatch) return;
    deadlineWatch = true;
    void (async () => {
      for (;;) {
        await condition(() => deadlines.size > 0);
        const earliest = Math.min(...deadlines.values());
        if (earliest > Date.now()) await sleep(earliest - Date.now());
        for (const [key, at] of deadlines) if (at <= Date.now()) deadlines.delete(key);
      }
    })();
  }

  async function requestAndWait(ref: MessageRef): Promise<BulkItemResult> {
    const key = refText(ref);
    const result = (outcome: BulkItemResult['outcome'], rowCount: number, reason: string | null): BulkItemResult => ({
      kind: ref.kind,
      id: ref.id,
      outcome,
      rowCount,
      reason,
    });
    deadlines.set(key, Date.now() + messageTimeoutMs);
    watchDeadlines();
    let answer: BulkItemRequestAnswer;
    try {
      answer = await requester.requestBulkItemRestore({ ...ref, actorRequestId: s.actorRequestId, notifyWorkflowId: info.workflowId });
    } catch (err) {
      return result('failed', 0, `could not request its restore: ${failureReason(err)}`);
    }
    if (answer.outcome === 'unknown') return result('failed', 0, `unknown message: ${answer.reason ?? 'no one ever defined it'}`);
    if (answer.outcome === 'already_available' && !told.has(key)) {
      if (answer.attempt > 1) await condition(() => told.has(key), RETRIED_ANSWER_GRACE_MS);
      if (!told.has(key)) return result('already_available', 0, `available (${answer.state ?? 'unknown'}) when the restore reached it`);
    }
    // A signal that came before the answer is in `told` already.
    await condition(() => told.has(key) || !deadlines.has(key));
    const done = told.get(key);
    if (!done) return result('failed', 0, `not restored after ${Math.round(messageTimeoutMs / 1000)} s; its actor is still working on it`);
    return done.outcome === 'restored'
      ? result('restored', done.rowCount, null)
      : result('failed', 0, `its restore cannot proceed: ${done.reason ?? 'no reason given'}`);
  }

  function tally(r: BulkItemResult): void {
    if (r.outcome === 'restored') {
      s.restored += 1;
      s.rowsRestored += r.rowCount;
    } else if (r.outcome === 'already_available') {
      s.alreadyAvailable += 1;
    } else {
      s.failed += 1;
      if (s.failures.length < MAX_FAILURES_KEPT) s.failures.push({ kind: r.kind, id: r.id, reason: r.reason ?? 'failed' });
    }
  }

  function startOne(ref: MessageRef): void {
    const key = refText(ref);
    inFlight.add(key);
    if (patched(PATCH_TOLD_BY_ACTOR)) {
      void (async () => {
        const r = await requestAndWait(ref);
        await bookkeeping.recordBulkItemResult({ executionKey: s.executionKey, result: r });
        tally(r);
        inFlight.delete(key);
        told.delete(key);
        deadlines.delete(key);
      })();
      return;
    }
    void (async () => {
      let r: BulkItemResult;
      try {
        r = await restorer.restoreBulkItem({
          ...ref,
          executionKey: s.executionKey,
          actorRequestId: s.actorRequestId,
          failAfterAttempts,
          messageTimeoutMs,
        });
      } catch (err) {
        // Out of attempts (or timed out): the message failed, the request goes on.
        r = { ...ref, outcome: 'failed', rowCount: 0, reason: `could not watch its restore: ${failureReason(err)}` };
        try {
          await bookkeeping.recordBulkItemResult({ executionKey: s.executionKey, result: r });
        } catch (recordErr) {
          log.error('could not record a failed message', { message: key, error: failureReason(recordErr) });
        }
      }
      tally(r);
      inFlight.delete(key);
    })();
  }

  /** Resolves true when every message has finished, false when it is time to continue as new. */
  async function restoreAll(): Promise<boolean> {
    for (;;) {
      if (workflowInfo().continueAsNewSuggested) {
        await condition(() => inFlight.size === 0);
        return false;
      }
      if (s.queue.length === 0 && !s.exhausted) {
        const limit = pageSize(concurrency);
        const page = await bookkeeping.nextBulkItems({ executionKey: s.executionKey, after: s.cursor, limit });
        s.queue.push(...page);
        if (page.length > 0) s.cursor = page[page.length - 1];
        if (page.length < limit) s.exhausted = true;
        continue;
      }
      if (s.queue.length === 0) {
        await condition(() => inFlight.size === 0);
        return true;
      }
      if (inFlight.size >= concurrency) {
        await condition(() => inFlight.size < concurrency || workflowInfo().continueAsNewSuggested);
        continue;
      }
      startOne(s.queue.shift() as MessageRef);
    }
  }

  if (s.phase === 'registering') {
    const registered = await registrar.registerBulkItems({ executionKey: s.executionKey, selection: input.selection });
    s.total = registered.total;
    s.alreadyAvailable = registered.alreadyAvailable;
    s.failed = registered.failed;
    s.failures = registered.failures.slice(0, MAX_FAILURES_KEPT);
    s.phase = 'restoring';
    log.info('bulk restore registered', { requestId: input.requestId, total: s.total, toRestore: registered.pending });
  }

  if (s.phase === 'restoring') {
    if (!(await restoreAll())) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof interactionDataBulkRestore>({
        requestId: input.requestId,
        selection: slim(input.selection),
        requestedBy: input.requestedBy,
        tuning: input.tuning,
        ...(input.callbackUrl ? { callbackUrl: input.callbackUrl } : {}),
        carried: { ...s, runs: s.runs + 1 },
      });
    }
    s.phase = 'notifying';
    s.finishedAt = nowIso();
  }

  if (s.phase === 'notifying') {
    s.summarySentAt = await mailer.sendBulkRestoreSummary({
      executionKey: s.executionKey,
      requestId: input.requestId,
      requestedBy: input.requestedBy,
      selection: s.selection,
      rowsRestored: s.rowsRestored,
      startedAt: s.startedAt,
      finishedAt: s.finishedAt ?? nowIso(),
    });
    // Only requests that named a callback schedule it: histories recorded before callbacks never do.
    if (input.callbackUrl) {
      const event = 'bulk_restore.completed';
      await caller
        .deliverCallback({
          url: input.callbackUrl,
          deliveryId: `${input.requestId}/${event}`,
          event,
          body: { ...progress(), finishedAt: s.finishedAt ?? nowIso() },
        })
        .catch((err: unknown) => log.error('bulk restore callback given up', { url: input.callbackUrl, error: String(err) }));
    }
    s.phase = 'completed';
  }

  await condition(allHandlersFinished);
  return progress();
}

/** Dry run: what a request would restore, computed by a worker (which has the database), changing nothing. */
export async function interactionDataBulkRestorePreview(input: BulkPreviewInput): Promise<BulkRestorePreview> {
  requireInput(isRecord(input), 'interactionDataBulkRestorePreview', 'a selection');
  return previewer.previewBulkRestore(input);
}
