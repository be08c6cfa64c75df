/**
 * SIGKILL the worker in the middle of an archive and of a restore: after a new worker takes over, the
 * message holds exactly its original rows: none lost, none doubled.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { MessageRef } from '../src/shared/types';
import { canonicalBytes, sha256 } from '../src/storage/chunkCodec';
import {
  archivedRowCount,
  createStack,
  hotRowCount,
  hotRows,
  seedInteractions,
  waitFor,
  waitForState,
  type TestStack,
} from './support/stack';

const ROWS = 40_000;

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('worker killed mid-move', () => {
  let stack: TestStack;

  before(async () => {
    // A TTL of an hour with stops dated two hours back: expiry at once, and a restored message does not
    // expire again while the test is still reading its 40,000 rows.
    stack = await createStack({ ttl: '1 hour', cleanupInterval: '1 hour', chunkRows: 250 });
  });
  after(async () => stack?.close());

  it('archive and restore both finish with exactly the original rows', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'crash-me' };
    await seedInteractions(stack.db, ref, ROWS, { batch: 2_000 });
    const original = await hotRows(stack.db, ref);
    const originalChecksum = sha256(canonicalBytes(original));

    let worker = stack.spawnWorker();
    await stack.lifecycle.stop(ref.kind, ref.id, { stoppedAt: new Date(Date.now() - 2 * 3_600_000).toISOString() });
    await waitFor(
      'archive under way',
      async () => {
        const moved = await archivedRowCount(stack.db, ref);
        return moved >= 2_500 && moved < ROWS - 5_000;
      },
      60_000,
      50,
    );
    await killed(worker);
    const movedAtKill = await archivedRowCount(stack.db, ref);
    const hotAtKill = (await hotRows(stack.db, ref)).length;
    assert.ok(movedAtKill > 0 && movedAtKill < ROWS, 'the kill landed in the middle of the archive');
    // Every row is still hot, in the table being drained, until the archive has stored all of them.
    assert.equal(hotAtKill, ROWS);

    worker = stack.spawnWorker();
    const expired = await waitForState(stack, ref, 'expired', 120_000);
    assert.equal(expired.archive?.rowCount, ROWS);
    assert.equal((await hotRows(stack.db, ref)).length, 0);
    assert.equal(await archivedRowCount(stack.db, ref), ROWS);

    await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'crash@example.com' });
    await waitFor(
      'restore under way',
      async () => {
        const n = await hotRowCount(stack.db, ref);
        return n >= 2_500 && n < ROWS - 5_000;
      },
      60_000,
      50,
    );
    await killed(worker);
    worker = stack.spawnWorker();
    const restored = await waitForState(stack, ref, 'stopped', 120_000);
    assert.equal(restored.lastRestore?.rowCount, ROWS);
    const back = await hotRows(stack.db, ref);
    assert.equal(back.length, ROWS);
    assert.equal(sha256(canonicalBytes(back)), originalChecksum, 'same rows, byte for byte');
    assert.equal(await archivedRowCount(stack.db, ref), 0);
    await killed(worker);
  });
});
