/**
 * The Temporal dev server is killed and restarted on its SQLite file while actors sleep on their
 * deadlines: the timers survive and every actor expires on time, once. The file is in WAL mode, as
 * `npm start` runs it, synced at checkpoints only: a killed server must still lose nothing it committed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { MessageRef } from '../src/shared/types';
import { createStack, waitFor, waitForState, type TestStack } from './support/stack';

const TTL_MS = 15_000;

describe('Temporal server restart while actors sleep', () => {
  let stack: TestStack;

  before(async () => {
    stack = await createStack({ privateServer: true, ttl: `${TTL_MS / 1000} seconds`, cleanupInterval: '1 hour' });
    await stack.startWorker();
  });
  after(async () => stack?.close());

  it('actors still expire on time', async () => {
    const refs: MessageRef[] = Array.from({ length: 8 }, (_, i) => ({ kind: i % 2 ? 'canvas' : 'campaign', id: `sleeper-${i}` }));
    for (const ref of refs) await stack.lifecycle.stop(ref.kind, ref.id);
    const deadlines = new Map<string, number>();
    for (const ref of refs) {
      const s = await waitForState(stack, ref, 'stopped', 20_000);
      deadlines.set(ref.id, Date.parse(s.expiresAt!));
    }

    const dbFile = stack.server!.dbFile;
    assert.ok(existsSync(`${dbFile}-wal`), `the dev server's SQLite runs in WAL mode (no ${dbFile}-wal)`);
    await stack.restartServer('kill');
    // Back in service, the worker answering through it, before the second restart.
    await waitFor('an answer after the restart', () => stack.lifecycle.status(refs[0].kind, refs[0].id).catch(() => null), 60_000);
    await stack.restartServer('stop');
    const backAt = Date.now();

    for (const ref of refs) {
      const s = await waitForState(stack, ref, 'expired', 60_000);
      const checkedAt = Date.parse(s.lastCheckedAt!);
      const due = deadlines.get(ref.id)!;
      assert.ok(checkedAt >= due, `${ref.id} expired early: checked at ${s.lastCheckedAt}, due ${new Date(due).toISOString()}`);
      // A deadline that fell while the server was down fires once it is back.
      const firesFrom = Math.max(due, backAt);
      assert.ok(
        checkedAt - firesFrom < 10_000,
        `${ref.id} expired ${checkedAt - firesFrom} ms after its deadline (or the server's return)`,
      );
      assert.equal(s.archive?.generation, 1, 'archived once');
    }
    const manifests = await stack.db('archive_manifests').whereIn(
      'message_id',
      refs.map((r) => r.id),
    );
    assert.equal(manifests.length, refs.length, 'one archive per actor, none twice');
  });
});
