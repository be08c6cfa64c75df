/**
 * Typed client of bulk restores, for the API, the CLI and scripts. A request's workflow ID is derived
 * from its content (or from the id the caller names), so starting the same request again attaches to the
 * workflow already there instead of restoring, and e-mailing, twice.
 *
 * Re-use policy: while a request runs, or after it completed, the same request attaches to it (its
 * outcome stays readable for the namespace's retention period). Only a request that failed, was
 * terminated or cancelled can be started again under the same id. To run a completed request again, for
 * instance when the same messages have expired once more, name a new request id.
 */
import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionStatusName,
  type WorkflowHandle,
} from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { normaliseBulkRequest, normaliseSelection, parseBulkRequestId, type BulkRestoreRequest } from '../bulk/request';
import {
  BULK_PREVIEW_WORKFLOW_ID_PREFIX,
  BULK_PREVIEW_WORKFLOW_TYPE,
  BULK_RESTORE_WORKFLOW_TYPE,
  bulkRestoreWorkflowId,
  describeSelection,
  summariseSelection,
  type BulkRestoreInput,
  type BulkRestorePreview,
  type BulkRestoreProgress,
  type BulkSelectionSummary,
} from '../bulk/types';
import { InvalidInputError } from '../shared/validation';
import { TASK_QUEUE } from '../shared/workflowId';
import { bulkRestoreProgressQuery } from '../../workflows/bulkDefinitions';
import type { interactionDataBulkRestore, interactionDataBulkRestorePreview } from '../../workflows/bulkRestore';

export type { BulkRestoreRequest } from '../bulk/request';

/** An explicit request id that already names a different request. */
export class BulkRequestConflictError extends Error {
  override name = 'BulkRequestConflictError';
}

export interface BulkRestoreStarted {
  requestId: string;
  workflowId: string;
  /** True when the request already existed: nothing new was started. */
  attached: boolean;
  /** Temporal's status of the request's workflow (RUNNING, COMPLETED, ...). */
  status: WorkflowExecutionStatusName;
  selection: BulkSelectionSummary;
  requestedBy: string;
}

export interface BulkRestoreView {
  requestId: string;
  workflowId: string;
  status: WorkflowExecutionStatusName;
  startedAt: string;
  closedAt: string | null;
  /** Progress of a running request, the result of a completed one; null if it could not be read. */
  progress: BulkRestoreProgress | null;
  /** Why the workflow did not complete (failed, terminated, ...), when it did not. */
  problem: string | null;
}

/** What the memo records so that an attaching caller can tell whether it is the same request. */
interface RequestMemo {
  fingerprint: string;
  selection: BulkSelectionSummary;
  requestedBy: string;
}

export const PREVIEW_LIMIT_DEFAULT = 1_000;

/** As many bulk restores as allowed are running; a new one must wait for one to finish. */
export class TooManyBulkRestoresError extends Error {
  override name = 'TooManyBulkRestoresError';
  constructor(
    readonly running: number,
    readonly limit: number,
  ) {
    super(`${running} bulk restores are running and at most ${limit} may run at once; try again when one has finished`);
  }
}

export interface StartOptions {
  /** Refuse to start a new request (attaching to an existing one is always allowed) while this many run. */
  maxRunning?: number;
}

export class BulkRestoreClient {
  constructor(private readonly client: Client) {}

  handle(requestId: string): WorkflowHandle<typeof interactionDataBulkRestore> {
    return this.client.workflow.getHandle<typeof interactionDataBulkRestore>(bulkRestoreWorkflowId(parseBulkRequestId(requestId)));
  }

  /** Starts the request, or attaches to it when it is already running or has completed. */
  async start(request: BulkRestoreRequest, options: StartOptions = {}): Promise<BulkRestoreStarted> {
    const n = normaliseBulkRequest(request);
    const workflowId = bulkRestoreWorkflowId(n.requestId);
    if (options.maxRunning !== undefined && !(await this.exists(workflowId))) {
      // Visibility is eventually consistent: two requests at the same instant may both pass; the cap is
      // about a sustained load, not an exact count.
      const running = await this.countRunning();
      if (running >= options.maxRunning) throw new TooManyBulkRestoresError(running, options.maxRunning);
    }
    const selection = summariseSelection(n.selection);
    const memo: RequestMemo = { fingerprint: n.fingerprint, selection, requestedBy: n.requestedBy };
    const input: BulkRestoreInput = {
      requestId: n.requestId,
      selection: n.selection,
      requestedBy: n.requestedBy,
      tuning: n.tuning,
      ...(n.callbackUrl ? { callbackUrl: n.callbackUrl } : {}),
    };
    try {
      await this.client.workflow.start<typeof interactionDataBulkRestore>(BULK_RESTORE_WORKFLOW_TYPE, {
        workflowId,
        taskQueue: TASK_QUEUE,
        args: [input],
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        memo: { ...memo },
        staticSummary: `Restore ${describeSelection(selection)} for ${n.requestedBy}`,
      });
      return { requestId: n.requestId, workflowId, attached: false, status: 'RUNNING', selection, requestedBy: n.requestedBy };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    const d = await this.client.workflow.getHandle(workflowId).describe();
    const existing = d.memo as Partial<RequestMemo> | undefined;
    if (existing?.fingerprint !== n.fingerprint) {
      throw new BulkRequestConflictError(
        `request id ${n.requestId} already names another bulk restore` +
          (existing?.selection ? ` (${describeSelection(existing.selection)} for ${existing.requestedBy ?? 'someone else'})` : '') +
          '; choose another request id',
      );
    }
    return { requestId: n.requestId, workflowId, attached: true, status: d.status.name, selection, requestedBy: n.requestedBy };
  }

  /** Bulk restores running now, from Temporal visibility. */
  async countRunning(): Promise<number> {
    const { count } = await this.client.workflow.count(`WorkflowType = '${BULK_RESTORE_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`);
    return count;
  }

  private async exists(workflowId: string): Promise<boolean> {
    try {
      const d = await this.client.workflow.getHandle(workflowId).describe();
      // A failed request may be started again under its id (ALLOW_DUPLICATE_FAILED_ONLY): that is a new run.
      return d.status.name === 'RUNNING' || d.status.name === 'COMPLETED';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  /** Where a request stands, or null when there is no such request. */
  async get(requestId: string): Promise<BulkRestoreView | null> {
    const handle = this.handle(requestId);
    let d;
    try {
      d = await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
    const base = {
      requestId: parseBulkRequestId(requestId),
      workflowId: handle.workflowId,
      status: d.status.name,
      startedAt: d.startTime.toISOString(),
      closedAt: d.closeTime ? d.closeTime.toISOString() : null,
    };
    if (d.status.name === 'RUNNING') return { ...base, progress: await handle.query(bulkRestoreProgressQuery), problem: null };
    if (d.status.name === 'COMPLETED') return { ...base, progress: await handle.result(), problem: null };
    // Failed, terminated, cancelled or timed out: tell why, and what it had done if a worker can replay it.
    let problem = `the request's workflow is ${d.status.name.toLowerCase()}`;
    try {
      await handle.result();
    } catch (err) {
      problem = `${problem}: ${failureMessage(err)}`;
    }
    const progress = await handle.query(bulkRestoreProgressQuery).catch(() => null);
    return { ...base, progress, problem };
  }

  /** The progress query of a running request (also answers for a closed one, by replay on a worker). */
  progress(requestId: string): Promise<BulkRestoreProgress> {
    return this.handle(requestId).query(bulkRestoreProgressQuery);
  }

  /** Waits for the request to finish, across continue-as-new, and returns its final progress. */
  result(requestId: string): Promise<BulkRestoreProgress> {
    return this.handle(requestId).result();
  }

  /** Dry run: what the request would restore, read by a worker from MySQL; nothing is registered or signalled. */
  async preview(request: Pick<BulkRestoreRequest, 'tag' | 'kind' | 'refs'>, limit = PREVIEW_LIMIT_DEFAULT): Promise<BulkRestorePreview> {
    if (!Number.isSafeInteger(limit) || limit < 0) throw new InvalidInputError(`limit must be a whole number, got ${limit}`);
    const selection = normaliseSelection(request);
    return this.client.workflow.execute<typeof interactionDataBulkRestorePreview>(BULK_PREVIEW_WORKFLOW_TYPE, {
      workflowId: `${BULK_PREVIEW_WORKFLOW_ID_PREFIX}${randomUUID()}`,
      taskQueue: TASK_QUEUE,
      args: [{ selection, limit }],
      // A dry run nobody can answer should not linger.
      workflowExecutionTimeout: '10m',
    });
  }
}

function failureMessage(err: unknown): string {
  let current: unknown = err;
  let message = err instanceof Error ? err.message : String(err);
  // The SDK wraps the real reason (WorkflowFailedError → TerminatedFailure/ApplicationFailure → ...).
  for (let i = 0; i < 4 && current instanceof Error; i++) {
    if (current.message) message = current.message;
    current = (current as { cause?: unknown }).cause;
  }
  return message;
}
