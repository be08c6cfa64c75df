/**
 * Starts and reads users' erasures, for the API and the CLI. Starting one records it in MySQL first
 * (src/privacy/erasureRecords.ts), so from the moment the caller has its request id the user's old
 * events are refused at ingestion, and then starts its workflow (workflows/erasure.ts).
 *
 * One erasure per user at a time: a request for a user whose erasure is running attaches to it, as does
 * a request naming an id already used for the same user. Once done, a new request is a new erasure (of
 * whatever the user's id gathered since, a new life).
 */
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { Db } from '../db/knex';
import { USER_ID_PATTERN } from '../dataplane/ingest/events';
import { beginErasure, erasureView, runningErasureOf, type ErasureView } from '../privacy/erasureRecords';
import { assertRequestId, InvalidInputError } from '../shared/validation';
import { ERASURE_WORKFLOW_TYPE, erasureWorkflowId, TASK_QUEUE } from '../shared/workflowId';
import type { interactionDataErasure } from '../../workflows/erasure';

export interface ErasureStarted {
  requestId: string;
  workflowId: string;
  /** True when the request already existed (running, or this id named before): nothing new was started. */
  attached: boolean;
  erasedThrough: string;
}

const USER_ID_RE = new RegExp(USER_ID_PATTERN, 'u');

export function assertUserId(value: unknown): string {
  if (typeof value !== 'string' || !USER_ID_RE.test(value)) {
    throw new InvalidInputError(
      `malformed user id ${JSON.stringify(value)}: 1-64 characters, no control characters, no spaces at either end`,
    );
  }
  return value;
}

export class ErasureClient {
  constructor(
    private readonly client: Client,
    private readonly db: Db,
  ) {}

  async start(input: { userId: string; requestedBy: string; requestId?: string }): Promise<ErasureStarted> {
    const userId = assertUserId(input.userId);
    const named = input.requestId === undefined ? null : assertRequestId(input.requestId);
    const requestId = named ?? (await runningErasureOf(this.db, userId)) ?? randomUUID();
    const begun = await beginErasure(this.db, { requestId, userId, requestedBy: input.requestedBy });
    const workflowId = erasureWorkflowId(requestId);
    try {
      await this.client.workflow.start<typeof interactionDataErasure>(ERASURE_WORKFLOW_TYPE, {
        workflowId,
        taskQueue: TASK_QUEUE,
        args: [{ requestId, userId, requestedBy: input.requestedBy, erasedThrough: begun.erasedThrough }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        // A completed request is not run again; one whose workflow failed or was terminated may be.
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    return { requestId, workflowId, attached: !begun.created, erasedThrough: begun.erasedThrough };
  }

  get(requestId: string): Promise<ErasureView | null> {
    return erasureView(this.db, assertRequestId(requestId));
  }
}
