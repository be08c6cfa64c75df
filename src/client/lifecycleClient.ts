/**
 * Typed client for services, the API and the CLI. Every call goes through the one workflow-ID helper,
 * and stop/restore use signal-with-start, so a message never seen before gets its actor on first contact.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import {
  messageDetailsSignal,
  referencesChangedSignal,
  restoreSignal,
  resumeSignal,
  statusQuery,
  stopSignal,
} from '../../workflows/definitions';
import type { interactionDataLifecycle } from '../../workflows/lifecycle';
import { InteractionDataExpiresAt, InteractionDataState, MessageKindAttr, MessageTags } from '../shared/searchAttributes';
import {
  LIFECYCLE_STATES,
  RESUME_REFUSED_MESSAGE,
  type LifecycleState,
  type LifecycleStatus,
  type MessageKind,
  type MessageRef,
} from '../shared/types';
import { assertEmail, assertInstant, assertRequestId, assertTag, InvalidInputError } from '../shared/validation';
import { LIFECYCLE_WORKFLOW_TYPE, lifecycleWorkflowId, messageRef, TASK_QUEUE } from '../shared/workflowId';

export class ResumeRefusedError extends Error {
  override name = 'ResumeRefusedError';
}

export interface RestoreRequest {
  requestedBy: string;
  requestId?: string;
}

export interface RestoreAccepted {
  requestId: string;
  /** False when the data is already available: nothing was signalled. */
  accepted: boolean;
  status: LifecycleStatus | null;
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

const RESUMABLE: LifecycleState[] = ['active', 'stopped', 'retained'];

export class LifecycleClient {
  constructor(private readonly client: Client) {}

  private handle(ref: MessageRef): WorkflowHandle<typeof interactionDataLifecycle> {
    return this.client.workflow.getHandle<typeof interactionDataLifecycle>(lifecycleWorkflowId(ref));
  }

  private startOptions(ref: MessageRef) {
    return {
      workflowId: lifecycleWorkflowId(ref),
      taskQueue: TASK_QUEUE,
      args: [{ kind: ref.kind, id: ref.id }] as [{ kind: MessageKind; id: string }],
      typedSearchAttributes: new TypedSearchAttributes([{ key: MessageKindAttr, value: ref.kind }]),
    };
  }

  async stop(kind: unknown, id: unknown, payload: { stoppedAt?: unknown } = {}): Promise<void> {
    const ref = messageRef(kind, id);
    const stoppedAt = payload.stoppedAt === undefined ? undefined : assertInstant(payload.stoppedAt, 'stoppedAt');
    await this.client.workflow.signalWithStart(LIFECYCLE_WORKFLOW_TYPE, {
      ...this.startOptions(ref),
      signal: stopSignal,
      signalArgs: [stoppedAt ? { stoppedAt } : {}],
    });
  }

  /** Refuses, with the words users know, to resume a message whose data has expired. */
  async resume(kind: unknown, id: unknown): Promise<void> {
    const ref = messageRef(kind, id);
    const status = await this.status(ref.kind, ref.id);
    if (status && !RESUMABLE.includes(status.state)) throw new ResumeRefusedError(RESUME_REFUSED_MESSAGE[ref.kind]);
    // The actor re-checks on arrival, so a race with an expiry still cannot resume expired data.
    await this.client.workflow.signalWithStart(LIFECYCLE_WORKFLOW_TYPE, {
      ...this.startOptions(ref),
      signal: resumeSignal,
      signalArgs: [{}],
    });
  }

  async restore(kind: unknown, id: unknown, request: RestoreRequest): Promise<RestoreAccepted> {
    const ref = messageRef(kind, id);
    const requestedBy = assertEmail(request.requestedBy);
    const requestId = request.requestId === undefined ? randomUUID() : assertRequestId(request.requestId);
    const status = await this.status(ref.kind, ref.id);
    if (status?.available) return { requestId, accepted: false, status };
    await this.client.workflow.signalWithStart(LIFECYCLE_WORKFLOW_TYPE, {
      ...this.startOptions(ref),
      signal: restoreSignal,
      signalArgs: [{ requestedBy, requestId }],
    });
    return { requestId, accepted: true, status };
  }

  async referencesChanged(kind: unknown, id: unknown): Promise<void> {
    const ref = messageRef(kind, id);
    await this.client.workflow.signalWithStart(LIFECYCLE_WORKFLOW_TYPE, {
      ...this.startOptions(ref),
      signal: referencesChangedSignal,
      signalArgs: [{}],
    });
  }

  async updateDetails(kind: unknown, id: unknown, details: { name?: string; tags?: string[] }): Promise<void> {
    const ref = messageRef(kind, id);
    const tags = details.tags?.map(assertTag);
    await this.client.workflow.signalWithStart(LIFECYCLE_WORKFLOW_TYPE, {
      ...this.startOptions(ref),
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
