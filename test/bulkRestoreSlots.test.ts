/**
 * A bulk restore on a worker with fewer activity slots than messages in flight. Each message's watch
 * waits for its actor's restore activity; the watches run on a task queue of their own, so they can
 * never take the slots those restores need. (Its own file: the test runner gives each file a process,
 * and this one needs an in-process worker with options of its own.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BulkRestoreClient } from '../src/client/bulkRestoreClient';
import type { MessageRef } from '../src/shared/types';
import { createStack, hotRows, seedInteractions, waitForState, withTimeout, type TestStack } from './support/stack';

describe('bulk restore on a worker with few activity slots', () => {
  let stack: TestStack;

  before(async () => {
    stack = await createStack({ ttl: '1 hour', cleanupInterval: '1 hour', chunkRows: 100 });
    // Two slots for the actors' activities. The watches run on their own queue: were they on this one,
    // two of them would hold both slots while waiting for restores that then could never start.
    await stack.startWorker({ maxConcurrentActivityTaskExecutions: 2 });
  });
  after(async () => {
    await stack?.close();
  });

  it('more messages in flight than the worker has activity slots: every one restored', async () => {
    const refs: MessageRef[] = Array.from({ length: 6 }, (_, i) => ({ kind: i % 2 ? 'canvas' : 'campaign', id: `slots-${i}` }));
    for (const r of refs) {
      await stack.db('messages').insert({ kind: r.kind, id: r.id, name: `Name of ${r.id}` });
      await seedInteractions(stack.db, r, 250);
    }
    const stoppedAt = new Date(Date.now() - 2 * 3_600_000).toISOString();
    await Promise.all(refs.map((r) => stack.lifecycle.stop(r.kind, r.id, { stoppedAt })));
    await Promise.all(refs.map((r) => waitForState(stack, r, 'expired', 60_000)));

    const bulk = new BulkRestoreClient(stack.client);
    const started = await bulk.start({ refs, requestedBy: 'slots@example.com', tuning: { concurrency: refs.length } });
    const result = await withTimeout(
      bulk.result(started.requestId),
      120_000,
      'the bulk restore to finish (were the actors starved of activity slots?)',
    );
    assert.deepEqual(
      { total: result.total, restored: result.restored, failed: result.failed, rows: result.rowsRestored },
      { total: 6, restored: 6, failed: 0, rows: 6 * 250 },
    );
    for (const r of refs) assert.equal((await hotRows(stack.db, r)).length, 250, `${r.kind}:${r.id} back`);
  });
});
