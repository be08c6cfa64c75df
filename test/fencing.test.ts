/**
 * Fencing of archive, sweep and restore attempts (issue 24, point 4). Temporal starts attempt N+1 of a
 * move once attempt N missed its heartbeats, while N may still be running; and a later activity (a
 * restore, the next generation's archive) may start while an earlier one's attempt still runs. Each
 * attempt claims the message's fence for its generation with a token of its own; once a newer attempt
 * or a later generation holds it, the stale attempt changes nothing and fails with StaleAttemptError.
 *
 * The attempts are driven directly, an earlier one paused in its progress hook while newer ones run.
 *
 *   npx tsx scripts/test.ts test/fencing.test.ts
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { connectionPool, type Db } from '../src/db/knex';
import type { MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import { canonicalBytes, sha256 } from '../src/storage/chunkCodec';
import { assertFenceHeld, claimFence, holdFenceForDdl, type MoveAttempt, type OnConnection } from '../src/storage/fence';
import { beginDrain, endDrain, ensureHotTable, hotTableExists, hotTableName } from '../src/storage/hotTables';
import { restoreMessage } from '../src/storage/restorer';
import { archivedRowCount, hotRows, seedInteractions, uniqueName, useThrowawayDatabase, waitFor } from './support/stack';

const ROWS = 1_000;
const CHUNK_ROWS = 100;

/** A progress hook that holds its attempt at its first report until released, as a stalled worker would. */
function pauseAtFirstProgress() {
  let reach: () => void = () => undefined;
  let release: () => void = () => undefined;
  const reached = new Promise<void>((r) => (reach = r));
  const released = new Promise<void>((r) => (release = r));
  let calls = 0;
  return {
    reached,
    release,
    onProgress: async () => {
      calls += 1;
      if (calls === 1) {
        reach();
        await released;
      }
    },
  };
}

const isStale = (err: unknown) => {
  assert.equal(
    (err as Error).name,
    'StaleAttemptError',
    `expected StaleAttemptError, got ${(err as Error).name}: ${(err as Error).message}`,
  );
  return true;
};

/** What a promise settled with: its error, or a note that it succeeded (so a stale attempt that did is reported as such). */
async function outcome(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => new Error(`succeeded with ${JSON.stringify(value)}`),
    (err: unknown) => err,
  );
}

/** Everything of the message that a move may change: chunks, manifests, its tables and their rows. */
async function footprint(db: Db, ref: MessageRef) {
  const message = { message_kind: ref.kind, message_id: ref.id };
  const chunks = await db('archive_chunks')
    .where(message)
    .orderBy(['generation', 'seq'])
    .select<Record<string, unknown>[]>('generation', 'seq', 'first_id', 'last_id', 'row_count', 'checksum', 'verified_at');
  const manifests = await db('archive_manifests')
    .where(message)
    .orderBy('generation')
    .select<Record<string, unknown>[]>('generation', 'status', 'row_count', 'chunk_count', 'checksum', 'archived_at', 'restored_at');
  const registry = await db('hot_tables')
    .where(message)
    .orderBy('table_no')
    .select<{ table_no: string; shared_in: string | null; role: string }[]>('table_no', 'shared_in', 'role');
  const tables = [];
  for (const t of registry) tables.push({ ...t, exists: await hotTableExists(db, { name: hotTableName(t.shared_in ?? t.table_no) }) });
  const rows = await hotRows(db, ref);
  return { chunks, manifests, tables, hotRows: rows.length, hotChecksum: sha256(canonicalBytes(rows)) };
}

describe('fencing of archive, sweep and restore attempts', () => {
  const database = useThrowawayDatabase(['interactions', 'archive_chunks', 'archive_manifests']);
  let db: Db;
  before(() => {
    db = database.get();
  });
  // A message of its own per test: the fence of one test's message never meets another's.
  const message = (): MessageRef => ({ kind: 'campaign', id: uniqueName('fenced') });

  it('a stale archive attempt resumed after a newer attempt archived and a restore brought the rows back changes nothing', async () => {
    const ref = message();
    await seedInteractions(db, ref, ROWS, { batch: 500 });
    const original = sha256(canonicalBytes(await hotRows(db, ref)));

    // Attempt N stalls after its first chunk (its second is stored meanwhile; its third is read ahead).
    const pause = pauseAtFirstProgress();
    const stale = archiveMessage(db, ref, 1, {
      chunkRows: CHUNK_ROWS,
      fence: { token: 'archive-attempt-1' },
      onProgress: pause.onProgress,
    });
    stale.catch(() => undefined); // judged below
    await pause.reached;
    await waitFor(
      'the stale attempt to store the chunk it had under way',
      async () => (await archivedRowCount(db, ref)) >= 2 * CHUNK_ROWS || null,
      10_000,
      20,
    );

    // Temporal gave up on it: attempt N+1 of the same generation archives, then the message is restored.
    const manifest = await archiveMessage(db, ref, 1, { chunkRows: CHUNK_ROWS, fence: { token: 'archive-attempt-2' } });
    assert.equal(manifest.rowCount, ROWS);
    const summary = await restoreMessage(db, ref, 1, { fence: { token: 'restore-attempt-1' } });
    assert.equal(summary.rowCount, ROWS);
    const restored = await footprint(db, ref);
    assert.equal(restored.hotRows, ROWS);
    assert.equal(restored.hotChecksum, original, 'the restore brought every row back');
    assert.equal(restored.chunks.length, 0, "the restore dropped the generation's long-term copy");
    assert.ok(
      restored.tables.some((t) => t.role === 'current' && t.exists),
      'the restored rows are in a fresh current table',
    );

    pause.release();
    const failure = await outcome(stale);
    assert.deepEqual(
      await footprint(db, ref),
      restored,
      'no chunk written, no table dropped or taken out of service, no manifest changed, restored rows intact',
    );
    isStale(failure);
  });

  it('a stale restore attempt resumed after the next generation was archived changes nothing', async () => {
    const ref = message();
    await seedInteractions(db, ref, ROWS, { batch: 500 });
    const original = sha256(canonicalBytes(await hotRows(db, ref)));
    await archiveMessage(db, ref, 1, { chunkRows: CHUNK_ROWS, fence: { token: 'archive-1' } });

    const pause = pauseAtFirstProgress();
    const stale = restoreMessage(db, ref, 1, { fence: { token: 'restore-attempt-1' }, onProgress: pause.onProgress });
    stale.catch(() => undefined); // judged below
    await pause.reached;

    // Attempt N+1 finishes the restore; the message expires again and generation 2 is archived.
    await restoreMessage(db, ref, 1, { fence: { token: 'restore-attempt-2' } });
    const manifest = await archiveMessage(db, ref, 2, { chunkRows: CHUNK_ROWS, fence: { token: 'archive-2' } });
    assert.equal(manifest.rowCount, ROWS);
    // A late interaction after the archive: a new current table the stale restore must leave alone too.
    await seedInteractions(db, ref, 3);
    const archived = await footprint(db, ref);
    assert.equal(archived.hotRows, 3);
    assert.equal(archived.chunks.filter((c) => c.generation === 2).length, ROWS / CHUNK_ROWS);

    pause.release();
    const failure = await outcome(stale);
    assert.deepEqual(await footprint(db, ref), archived, 'no row inserted, no manifest marked, no chunk deleted');
    isStale(failure);

    // Generation 2 still restores to exactly the original rows, beside the late ones.
    await restoreMessage(db, ref, 2, { fence: { token: 'restore-2' } });
    assert.equal((await hotRows(db, ref)).length, ROWS + 3);
    assert.equal(sha256(canonicalBytes((await hotRows(db, ref)).slice(0, ROWS))), original);
  });

  it('an attempt for an older generation cannot claim the message once a later generation has', async () => {
    const ref = message();
    await seedInteractions(db, ref, 300);
    await archiveMessage(db, ref, 1, { chunkRows: CHUNK_ROWS, fence: { token: 'archive-1' } });
    await restoreMessage(db, ref, 1, { fence: { token: 'restore-1' } });
    await archiveMessage(db, ref, 2, { chunkRows: CHUNK_ROWS, fence: { token: 'archive-2' } });
    // Late interactions wait in a current table for generation 2's next sweep.
    await seedInteractions(db, ref, 5);
    const { name: late } = await ensureHotTable(db, ref);
    const before = await footprint(db, ref);

    // A sweep, and a restore, of generation 1 started by a run that never learnt of generation 2.
    const sweep = await outcome(archiveMessage(db, ref, 1, { chunkRows: CHUNK_ROWS, fence: { token: 'old-sweep' } }));
    const restore = await outcome(restoreMessage(db, ref, 1, { fence: { token: 'old-restore' } }));
    assert.deepEqual(await footprint(db, ref), before, 'the late rows are still in their table, nothing archived or restored');
    isStale(sweep);
    isStale(restore);
    assert.equal((await ensureHotTable(db, ref)).name, late);

    // Generation 2's own sweep still can.
    const swept = await archiveMessage(db, ref, 2, { chunkRows: CHUNK_ROWS, fence: { token: 'sweep-2' } });
    assert.equal(swept.rowCount, 305);
  });

  it('a stale attempt can neither take a table out of service nor drop it, and a claim waits for a DROP under way', async () => {
    const ref = message();
    await seedInteractions(db, ref, 10);
    const stale: MoveAttempt = { generation: 1, phase: 'archive', token: 'attempt-1' };
    const newer: MoveAttempt = { generation: 1, phase: 'archive', token: 'attempt-2' };
    await claimFence(db, ref, stale);
    await claimFence(db, ref, newer);
    const untouched = await footprint(db, ref);
    await assert.rejects(
      beginDrain(db, ref, (trx) => assertFenceHeld(trx, ref, stale)).then(() => undefined),
      isStale,
    );
    assert.deepEqual(await footprint(db, ref), untouched, 'the current table is still in service');

    const table = await beginDrain(db, ref, (trx) => assertFenceHeld(trx, ref, newer));
    assert.ok(table);
    const draining = await footprint(db, ref);
    // The table the newer attempt drains is not the stale attempt's to drop.
    await assert.rejects(endDrain(db, ref, table, { guard: (on, conn) => holdFenceForDdl(on, conn, ref, stale) }), isStale);
    assert.deepEqual(await footprint(db, ref), draining, 'the table is still there');

    // The newer attempt's DROP holds the message's named lock: a claim meanwhile waits (here 1 s, then gives up, retryably).
    const conn = await connectionPool(db).acquireConnection();
    const on: OnConnection = (sql, values = []) => db.raw(sql, [...values]).connection(conn);
    try {
      const release = await holdFenceForDdl(on, conn, ref, newer);
      await assert.rejects(claimFence(db, ref, { generation: 2, phase: 'archive', token: 'next' }, 1), /stayed taken/);
      await release();
    } finally {
      await connectionPool(db).releaseConnection(conn);
    }
    await claimFence(db, ref, { generation: 2, phase: 'archive', token: 'next' }, 1);
    const [[fence]] = (await db.raw('SELECT generation, token FROM move_fences WHERE message_kind = ? AND message_id = ?', [
      ref.kind,
      ref.id,
    ])) as [{ generation: number; token: string }[]];
    assert.deepEqual({ ...fence }, { generation: 2, token: 'next' });
  });
});
