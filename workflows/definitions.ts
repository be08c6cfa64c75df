/**
 * Signals, Updates and queries of the lifecycle actor, defined once and imported by the workflow and by every
 * caller (client module, API, CLI), so names and payload types cannot drift apart.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  EraseUserAccepted,
  EraseUserRequest,
  LateInteractionsSignal,
  LifecycleStatus,
  MessageErasedSignal,
  MessageDetailsSignal,
  ReferencesChangedSignal,
  RestoreDoneSignal,
  RestoreOutcome,
  RestoreSignal,
  ResumeOutcome,
  ResumeSignal,
  StopOutcome,
  StopSignal,
} from '../src/shared/types';

export const stopSignal = defineSignal<[StopSignal]>('stop');
export const resumeSignal = defineSignal<[ResumeSignal]>('resume');
export const restoreSignal = defineSignal<[RestoreSignal]>('restore');
export const referencesChangedSignal = defineSignal<[ReferencesChangedSignal]>('referencesChanged');
/** Name or tags changed: keeps the MessageTags search attribute current. */
export const messageDetailsSignal = defineSignal<[MessageDetailsSignal]>('messageDetails');
export const statusQuery = defineQuery<LifecycleStatus>('status');
/**
 * Events were stored while the message's data was unavailable (sent by the worker's dispatcher of
 * ingestion's notes): an actor asleep after its archive sweeps them into long-term storage.
 */
export const lateInteractionsSignal = defineSignal<[LateInteractionsSignal]>('lateInteractions');

// Updates of the same names and payloads as the signals, for callers that need the actor's own answer.
/** An Update because the caller learns whether the stop changed anything and the new deadline. */
export const stopUpdate = defineUpdate<StopOutcome, [StopSignal]>('stop');
/** An Update because a refusal (rule 9) must reach the caller before it marks anything active. */
export const resumeUpdate = defineUpdate<ResumeOutcome, [ResumeSignal]>('resume');
/** An Update because the caller is told at once whether the restore was accepted, and under which id. */
/**
 * How a callback activity runs, for the actor and the bulk restore alike: retried for three days, then
 * given up (and logged): a receiver down longer than that is told by nothing else either, and no
 * workflow waits on it forever.
 */
export const CALLBACK_ACTIVITY_OPTIONS = {
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '3 days',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '10m' },
} as const;

export const restoreUpdate = defineUpdate<RestoreOutcome, [RestoreSignal]>('restore');
/** An Update because the operator who fixed a problem wants to know the step was started again. */
export const retryUpdate = defineUpdate<{ retried: string }, []>('retry');

/** Sent by an actor to the workflow named in a restore request's `notifyWorkflowId`. */
export const restoreDoneSignal = defineSignal<[RestoreDoneSignal]>('restoreDone');

/**
 * An Update because the erasure workflow learns at once that the actor took the request (validated and
 * queued); the erasure itself runs between the actor's moves and is reported with `messageErased`.
 */
export const eraseUserUpdate = defineUpdate<EraseUserAccepted, [EraseUserRequest]>('eraseUser');
/** Sent by an actor to the erasure workflow named in the request once its part is recorded. */
export const messageErasedSignal = defineSignal<[MessageErasedSignal]>('messageErased');
