/**
 * An actor continues as new only in a workflow task its history explains. An Update its validator
 * rejects leaves nothing in the history, yet its (speculative) workflow task carries the server's
 * "continue-as-new suggested": a continue-as-new decided there cannot be replayed, because on replay
 * there is no such task to decide it in. Found in CI: TMPRL1100 "No command scheduled for event
 * WorkflowExecutionContinuedAsNew" on an active actor's history after the API's hostile-input test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { MessageRef } from '../src/shared/types';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import { eraseUserUpdate, stopUpdate } from '../workflows/definitions';
import { unreplayableHistories } from './support/replayAll';
import { createStack, type TestStack } from './support/stack';
import type { RunningWorker } from '../src/worker';

const SUGGEST_AFTER = 30;

describe('continue-as-new', () => {
  let stack: TestStack;
  let worker: RunningWorker;

  before(async () => {
    // Suggested early, so a few Updates take an actor past it.
    stack = await createStack({ continueAsNewAfter: SUGGEST_AFTER });
    worker = await stack.startWorker();
  });
  after(async () => stack?.close());

  it('is not decided in the workflow task of an Update its validator rejected', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'can-edge' };
    const handle = stack.client.workflow.getHandle(lifecycleWorkflowId(ref));
    // An active actor brought to just below the suggestion with resumes (each one answered by the loop,
    // five events), so that the next workflow task, the rejected Update's, is the first to carry it.
    const length = async () => (await handle.fetchHistory()).events?.length ?? 0;
    await stack.lifecycle.resume(ref.kind, ref.id);
    while ((await length()) < SUGGEST_AFTER - 5) await stack.lifecycle.resume(ref.kind, ref.id);
    const runs = async () => (await stack.client.workflow.count(`WorkflowId = '${lifecycleWorkflowId(ref)}'`)).count;
    const before = await runs();
    const lengthBefore = await length();
    assert.ok(lengthBefore + 2 >= SUGGEST_AFTER, `history of ${lengthBefore} events: the next task is suggested to continue as new`);
    await assert.rejects(handle.executeUpdate(stopUpdate, { args: [{ stoppedAt: 'not an instant' }] }), WorkflowUpdateFailedError);
    assert.equal(await runs(), before, 'the rejected Update did not end the run');
    assert.deepEqual(await unreplayableHistories(stack.client), []);
  });

  it('answers an erasure in the same order live and on replay, when it comes with the first task a new worker runs', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'erase-after-can' };
    const workflowId = lifecycleWorkflowId(ref);
    const handle = stack.client.workflow.getHandle(workflowId);
    const runs = async () => (await stack.client.workflow.count(`WorkflowId = '${workflowId}'`)).count;
    // Resumes until the actor has continued as new: its new run starts idle, straight into its loop.
    await stack.lifecycle.resume(ref.kind, ref.id);
    while ((await runs()) < 2) await stack.lifecycle.resume(ref.kind, ref.id);
    await stack.lifecycle.resume(ref.kind, ref.id);
    // No worker holds the run when the erasure comes: the next one to start gets its whole history and
    // the Update in its first task, as a replacement for a killed worker does.
    await worker.shutdown();
    const asked = handle.executeUpdate(eraseUserUpdate, {
      args: [{ requestId: 'erase-can-1', userId: 'nobody', erasedThrough: new Date().toISOString(), notifyWorkflowId: 'no-such-erasure' }],
    });
    await new Promise((r) => setTimeout(r, 500));
    worker = await stack.startWorker();
    await asked;
    assert.deepEqual(await unreplayableHistories(stack.client), []);
  });
});
