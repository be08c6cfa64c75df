/**
 * A user's erasure (DELETE /v1/users/{id}, `interaction-data users erase`): one workflow per request,
 * `interaction-data-erasure:<request id>`.
 *
 * 1. beginErasure records the request and the erasure record ingestion checks from then on, removes the
 *    user's summaries and lists the user's messages (`user_messages`) in `erasure_messages`.
 * 2. The messages still pending there are asked of their actors (`eraseUser` Update with start), at most
 *    `window` at a time, refilled once half of them have reported; each actor erases the user between its moves, records its part in
 *    `erasure_messages` and signals `messageErased`. MySQL is the truth: a signal only wakes this
 *    workflow, which reads the pending list again; actors that said nothing for a while are asked again
 *    (an actor queues a request id once, and erasing twice finds nothing the second time).
 * 3. finishErasure removes what is left and reports the totals, which are this workflow's result.
 *
 * Continue-as-new when Temporal suggests it: the state is in MySQL, so the next run starts at step 2.
 */
import { allHandlersFinished, condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { ErasureActivities } from '../activities/erasure';
import type { ErasureView } from '../src/privacy/erasureRecords';
import { messageErasedSignal } from './definitions';
import { isRecord, isText, requireInput } from './workflowInput';

export interface ErasureInput {
  requestId: string;
  userId: string;
  requestedBy: string;
  /** Messages erased at once (default 32). */
  window?: number;
  /** Set by continue-as-new: the request is recorded. */
  erasedThrough?: string;
}

const retryForever = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' } as const;
const records = proxyActivities<ErasureActivities>({ startToCloseTimeout: '5m', retry: retryForever });
const asker = proxyActivities<ErasureActivities>({ startToCloseTimeout: '10m', heartbeatTimeout: '20s', retry: retryForever });

const DEFAULT_WINDOW = 32;
/** Actors asked this long ago that have not reported are asked again. */
const ASK_AGAIN_AFTER_MS = 10 * 60_000;
/** Without a report, the pending list is read again this often (a report may be lost with its actor's run). */
const RECHECK_MS = 60_000;

export async function interactionDataErasure(input: ErasureInput): Promise<ErasureView> {
  requireInput(
    isRecord(input) && isText(input.requestId) && isText(input.userId) && typeof input.requestedBy === 'string',
    'interactionDataErasure',
    '{requestId, userId, requestedBy} (as ErasureClient starts it)',
  );
  const window = Math.max(1, Math.min(input.window ?? DEFAULT_WINDOW, 256));
  let reported = 0;
  setHandler(messageErasedSignal, (signal) => {
    if (signal.requestId === input.requestId) reported += 1;
  });

  const erasedThrough =
    input.erasedThrough ??
    (await records.beginErasure({ requestId: input.requestId, userId: input.userId, requestedBy: input.requestedBy })).erasedThrough;
  const request = { requestId: input.requestId, userId: input.userId, erasedThrough, notifyWorkflowId: workflowInfo().workflowId };

  /** When each message under way was asked, by `<kind>:<id>`. */
  const asked = new Map<string, number>();
  for (;;) {
    // Before the read: a report that arrives while it runs then ends the wait below at once.
    const seen = reported;
    const pending = await records.pendingErasureMessages({ requestId: input.requestId, limit: window });
    if (pending.length === 0) break;
    const now = Date.now();
    const toAsk = pending.filter((r) => {
      const at = asked.get(`${r.kind}:${r.id}`);
      return at === undefined || now - at >= ASK_AGAIN_AFTER_MS;
    });
    if (toAsk.length > 0) {
      await asker.askActorsToErase({ refs: toAsk, request });
      for (const r of toAsk) asked.set(`${r.kind}:${r.id}`, Date.now());
    }
    // The window is refilled once half of it has reported (or, near the end, any of it): one read and
    // one round of asks per several messages, not per message.
    const refillAt = pending.length < window ? 1 : Math.max(1, Math.floor(window / 2));
    await condition(() => reported - seen >= refillAt, RECHECK_MS);
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof interactionDataErasure>({ ...input, erasedThrough });
    }
  }
  return records.finishErasure({ requestId: input.requestId });
}
