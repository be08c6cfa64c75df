/**
 * An Update whose call timed out before the actor accepted it is sent again with the same Update id
 * (which the server answers with the first one's outcome), a fresh start operation each time, and
 * given up after UPDATE_CALL_ATTEMPTS; any other failure is the caller's at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WithStartWorkflowOperation, WorkflowUpdateRPCTimeoutOrCancelledError, type Client } from '@temporalio/client';
import { LifecycleClient, UPDATE_CALL_ATTEMPTS } from '../../src/client/lifecycleClient';

interface Call {
  updateId: string | undefined;
  operation: unknown;
}

function clientFailing(times: number, failure: () => Error = () => new WorkflowUpdateRPCTimeoutOrCancelledError('timed out')) {
  const calls: Call[] = [];
  const workflow = {
    executeUpdateWithStart(_update: unknown, opts: { updateId?: string; startWorkflowOperation: unknown }) {
      calls.push({ updateId: opts.updateId, operation: opts.startWorkflowOperation });
      if (calls.length <= times) return Promise.reject(failure());
      return Promise.resolve({ changed: true, state: 'stopped', expiresAt: '2027-01-01T00:00:00.000Z' });
    },
  };
  return { client: { workflow } as unknown as Client, calls };
}

describe('Update calls that time out', () => {
  it('are sent again with the same Update id and a new start operation', async () => {
    const { client, calls } = clientFailing(UPDATE_CALL_ATTEMPTS - 1);
    const outcome = await new LifecycleClient(client).stop('campaign', 'c1');
    assert.equal(outcome.changed, true);
    assert.equal(calls.length, UPDATE_CALL_ATTEMPTS);
    assert.ok(calls[0].updateId, 'the first call names its Update id');
    assert.ok(calls.every((c) => c.updateId === calls[0].updateId));
    assert.ok(calls.every((c) => c.operation instanceof WithStartWorkflowOperation));
    assert.equal(new Set(calls.map((c) => c.operation)).size, calls.length);
  });

  it('give up after the last attempt with the timeout', async () => {
    const { client, calls } = clientFailing(UPDATE_CALL_ATTEMPTS);
    await assert.rejects(new LifecycleClient(client).stop('campaign', 'c1'), WorkflowUpdateRPCTimeoutOrCancelledError);
    assert.equal(calls.length, UPDATE_CALL_ATTEMPTS);
  });

  it('any other failure is not sent again', async () => {
    const { client, calls } = clientFailing(1, () => new Error('connection refused'));
    await assert.rejects(new LifecycleClient(client).stop('campaign', 'c1'), /connection refused/);
    assert.equal(calls.length, 1);
  });

  it('two calls are two Updates', async () => {
    const { client, calls } = clientFailing(0);
    const lifecycle = new LifecycleClient(client);
    await lifecycle.stop('campaign', 'c1');
    await lifecycle.stop('campaign', 'c1');
    assert.notEqual(calls[0].updateId, calls[1].updateId);
  });
});
