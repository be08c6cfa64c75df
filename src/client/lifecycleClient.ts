/**
 * Typed client for services, the API and the CLI. Every call goes through the one workflow-ID helper.
 * Stop, resume and restore are Updates with start: the caller gets the actor's own answer, and a message
 * never seen before gets its actor on first contact (a restore of an id no one defined is refused by the
 * actor, which then ends). Fire-and-forget notices (references, details) stay signals.
 */
import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  lateInteractionsSignal,
  messageDetailsSignal,
  referencesChangedSignal,
  restoreUpdate,
  resumeUpdate,
  retryUpdate,
  statusQuery,
  stopUpdate,
} from '../../workflows/definitions';
import type { interactionDataLifecycle } from '../../workflows/lifecycle';
import { InteractionDataExpiresAt, InteractionDataState, MessageTags } from '../shared/searchAttributes';
import {
  LIFECYCLE_STATES,
  type LifecycleState,
  type LifecycleStatus,
  type MessageKind,
  type MessageRef,
  type RestoreOutcome,
  type ResumeOutcome,
  type StopOutcome,
} from '../shared/types';
import { assertEmail, assertInstant, assertRequestId, assertTag, InvalidInputError } from '../shared/validation';
import { actorStartOptions } from './actorStart';
import { LIFECYCLE_WORKFLOW_TYPE, lifecycleWorkflowId, messageRef } from '../shared/workflowId';

export class ResumeRefusedError extends Error {
  override name = 'ResumeRefusedError';
}

/** A restore of an id no one ever defined, stopped or sent events for. */
export class UnknownMessageError extends Error {
  override name = 'UnknownMessageError';
}

/** The actor refused a request its validator or its loop could not accept (e.g. a retry with no problem). */
export class RequestRefusedError extends Error {
  override name = 'RequestRefusedError';
}

export interface RestoreRequest {
  requestedBy: string;
  requestId?: string;
  /** Workflow ID the actor signals (`restoreDone`) when the request is served or cannot be. */
  notifyWorkflowId?: string;
  /** Called when the request is served or cannot be; checked against the callback policy by the caller (src/callbacks/callbackUrl.ts). */
  callbackUrl?: string;
}

export interface RestoreAccepted {
  requestId: string;
  /** False when the data is already available: nothing was queued. */
  accepted: boolean;
  /** The actor's state when it answered. */
  state: LifecycleState;
}

/** The failure an Update ended with, as the actor worded it. */
function updateFailure(err: unknown): ApplicationFailure | null {
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) return err.cause;
  return null;
}

export interface ListFilter {
  state?: LifecycleState;
  tag?: string;
  kind?: MessageKind;
}

export interface ActorSummary extends MessageRef {
  state: string | null;
  tags: string[];
  expiresAt: string | null;
  workflowId: string;
}

/** Calls of one Update whose RPC timed out before the actor accepted it, the first included. */
export const UPDATE_CALL_ATTEMPTS = 3;

export class LifecycleClient {
  constructor(private readonly client: Client) {}

  private handle(ref: MessageRef): WorkflowHandle<typeof interactionDataLifecycle> {
    return this.client.workflow.getHandle<typeof interactionDataLifecycle>(lifecycleWorkflowId(ref));
  }

  /**
   * An Update with start: the actor exists once this returns, whether or not it existed before.
   *
   * The server answers an Update's call once the actor's worker has accepted it, and gives up on a
   * long poll for that under load (WorkflowUpdateRPCTimeoutOrCancelledError): the Update may or may not
   * be in the actor's history then. It is sent again with the same Update id, which the server answers
   * with the first one's outcome instead of running it twice; each attempt needs a start operation of
   * its own (one is used up by its call).
   */
  private async updateWithStart<Ret, Args extends [unknown]>(
    ref: MessageRef,
    update: Parameters<Client['workflow']['executeUpdateWithStart']>[0] & { name: string },
    args: Args,
  ): Promise<Ret> {
    const updateId = randomUUID();
    for (let attempt = 1; ; attempt++) {
      const startWorkflowOperation = new WithStartWorkflowOperation<typeof interactionDataLifecycle>(LIFECYCLE_WORKFLOW_TYPE, {
        ...actorStartOptions(ref),
        workflowIdConflictPolicy: 'USE_EXISTING',
      });
      try {
        return (await this.client.workflow.executeUpdateWithStart(update, { args, startWorkflowOperation, updateId })) as Ret;
      } catch (err) {
        if (!(err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) || attempt >= UPDATE_CALL_ATTEMPTS) throw err;
      }
    }
  }

  /** Records that the message stopped; answers whether that changed anything and the new deadline. */
  async stop(kind: unknown, id: unknown, payload: { stoppedAt?: unknown } = {}): Promise<StopOutcome> {
    const ref = messageRef(kind, id);
    const stoppedAt = payload.stoppedAt === undefined ? undefined : assertInstant(payload.stoppedAt, 'stoppedAt');
    return this.updateWithStart<StopOutcome, [{ stoppedAt?: string }]>(ref, stopUpdate, [stoppedAt ? { stoppedAt } : {}]);
  }

  /**
   * The actor decides, in order with its deadline: refused with the words users know once the data has
   * expired, or while the message's own audiences filter on expired data (rule 9).
   */
  async resume(kind: unknown, id: unknown): Promise<ResumeOutcome> {
    const ref = messageRef(kind, id);
    try {
      return await this.updateWithStart<ResumeOutcome, [Record<string, never>]>(ref, resumeUpdate, [{}]);
    } catch (err) {
      const failure = updateFailure(err);
      if (failure) throw new ResumeRefusedError(failure.message);
      throw err;
    }
  }

  async restore(kind: unknown, id: unknown, request: RestoreRequest): Promise<RestoreAccepted> {
    const ref = messageRef(kind, id);
    const requestedBy = request.requestedBy === '' && request.notifyWorkflowId ? '' : assertEmail(request.requestedBy);
    const requestId = request.requestId === undefined ? randomUUID() : assertRequestId(request.requestId);
    const payload = {
      requestedBy,
      requestId,
      ...(request.notifyWorkflowId ? { notifyWorkflowId: request.notifyWorkflowId } : {}),
      ...(request.callbackUrl ? { callbackUrl: request.callbackUrl } : {}),
    };
    try {
      const outcome = await this.updateWithStart<RestoreOutcome, [typeof payload]>(ref, restoreUpdate, [payload]);
      return { requestId: outcome.requestId, accepted: outcome.outcome === 'accepted', state: outcome.state };
    } catch (err) {
      const failure = updateFailure(err);
      if (failure?.type === 'UnknownMessage') throw new UnknownMessageError(failure.message);
      if (failure) throw new RequestRefusedError(failure.message);
      throw err;
    }
  }

  /** After an operator fixed a problem: the actor runs the step that failed again. */
  async retry(kind: unknown, id: unknown): Promise<{ retried: string }> {
    const ref = messageRef(kind, id);
    try {
      return await this.handle(ref).executeUpdate(retryUpdate);
    } catch (err) {
      const failure = updateFailure(err);
      if (failure) throw new RequestRefusedError(failure.message);
      throw err;
    }
  }

  async referencesChanged(kind: unknown, id: unknown): Promise<void> {
    const ref = messageRef(kind, id);
    await this.client.workflow.signalWithStart(LIFECYCLE_WORKFLOW_TYPE, {
      ...actorStartOptions(ref),
      signal: referencesChangedSignal,
      signalArgs: [{}],
    });
  }

  /** Wakes an actor asleep after its archive: events were stored while its data was unavailable. */
  async lateInteractions(kind: unknown, id: unknown): Promise<void> {
    const ref = messageRef(kind, id);
    await this.client.workflow.signalWithStart(LIFECYCLE_WORKFLOW_TYPE, {
      ...actorStartOptions(ref),
      signal: lateInteractionsSignal,
      signalArgs: [{}],
    });
  }

  async updateDetails(kind: unknown, id: unknown, details: { name?: string; tags?: string[] }): Promise<void> {
    const ref = messageRef(kind, id);
    const tags = details.tags?.map(assertTag);
    await this.client.workflow.signalWithStart(LIFECYCLE_WORKFLOW_TYPE, {
      ...actorStartOptions(ref),
      signal: messageDetailsSignal,
      signalArgs: [{ name: details.name, tags }],
    });
  }

  /** The actor's status, or null when no actor exists for the message yet. */
  async status(kind: unknown, id: unknown): Promise<LifecycleStatus | null> {
    const ref = messageRef(kind, id);
    try {
      return await this.handle(ref).query(statusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** Actors found through the search attributes (eventually consistent, as Temporal visibility is). */
  async *list(filter: ListFilter = {}): AsyncGenerator<ActorSummary> {
    for await (const wf of this.client.workflow.list({ query: buildListQuery(filter) })) {
      const sa = wf.typedSearchAttributes;
      const match = /^interaction-data:(campaign|canvas):(.+)$/.exec(wf.workflowId);
      if (!match) continue;
      const expires = sa.get(InteractionDataExpiresAt);
      yield {
        kind: match[1] as MessageKind,
        id: match[2],
        workflowId: wf.workflowId,
        state: sa.get(InteractionDataState) ?? null,
        tags: sa.get(MessageTags) ?? [],
        expiresAt: expires ? expires.toISOString() : null,
      };
    }
  }
}

export function buildListQuery(filter: ListFilter): string {
  const clauses = [`WorkflowType = '${LIFECYCLE_WORKFLOW_TYPE}'`, `ExecutionStatus = 'Running'`];
  if (filter.state !== undefined) {
    if (!LIFECYCLE_STATES.includes(filter.state)) {
      throw new InvalidInputError(`unknown state ${JSON.stringify(filter.state)}: expected one of ${LIFECYCLE_STATES.join(', ')}`);
    }
    clauses.push(`InteractionDataState = '${filter.state}'`);
  }
  if (filter.kind !== undefined) clauses.push(`MessageKind = '${messageRef(filter.kind, 'x').kind}'`);
  if (filter.tag !== undefined) clauses.push(`MessageTags = '${assertTag(filter.tag)}'`);
  return clauses.join(' AND ');
}
