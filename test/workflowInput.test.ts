/**
 * A workflow started by hand with input it cannot run on (the Temporal CLI's `workflow start` without
 * `--input`, say) fails at once with what it needs, instead of failing its workflow task for ever.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { BULK_PREVIEW_WORKFLOW_TYPE, BULK_RESTORE_WORKFLOW_TYPE } from '../src/bulk/types';
import { ERASURE_WORKFLOW_TYPE, LIFECYCLE_WORKFLOW_TYPE, TASK_QUEUE } from '../src/shared/workflowId';
import { createStack, uniqueName, type TestStack } from './support/stack';

describe('workflow input', () => {
  let stack: TestStack;

  before(async () => {
    stack = await createStack();
    await stack.startWorker();
  });
  after(async () => stack?.close());

  const cases: [string, unknown[], RegExp][] = [
    [LIFECYCLE_WORKFLOW_TYPE, [], /needs \{kind: "campaign" \| "canvas", id\}/],
    [LIFECYCLE_WORKFLOW_TYPE, [{ kind: 'email', id: 'x' }], /needs \{kind: "campaign" \| "canvas", id\}/],
    [BULK_RESTORE_WORKFLOW_TYPE, [], /needs \{requestId, selection, requestedBy, tuning\}/],
    [BULK_PREVIEW_WORKFLOW_TYPE, [], /needs a selection/],
    [ERASURE_WORKFLOW_TYPE, [{ userId: 'u-1' }], /needs \{requestId, userId, requestedBy\}/],
  ];
  for (const [type, args, needs] of cases) {
    it(`${type} with ${JSON.stringify(args)} fails at once, saying what it needs`, async () => {
      const run = stack.client.workflow.execute(type, { workflowId: uniqueName(`bad-input-${type}`), taskQueue: TASK_QUEUE, args });
      await assert.rejects(run, (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError, String(err));
        assert.ok(err.cause instanceof ApplicationFailure);
        assert.equal(err.cause.type, 'BadWorkflowInput');
        assert.match(err.cause.message, needs);
        return true;
      });
    });
  }
});
