/**
 * The worker is SIGKILLed at random points of archives and restores (the points and the seed are
 * printed). After every kill, every row is still hot until the archive drops the table it drained, and in
 * a verified chunk after that, with no more rows in chunks than there are; after every phase, the rows equal the
 * rows before, by count and checksum, none lost and none doubled, and the actor is in the right state.
 *
 * A kill point is a random fraction of the work still to do, reached after the new worker has moved
 * at least one chunk (so the kill lands while the activity really runs, not while Temporal waits for
 * the dead worker's heartbeat to time out), plus a random delay of up to 150 ms, which lands it
 * anywhere inside a chunk: reading, compressing, storing or checking it, or taking the table out of
 * service and dropping it. The worker's open transactions are read just before each archive kill, so
 * the report says where inside a chunk's transaction it landed, which the rows afterwards cannot show:
 * the server rolls that transaction back.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { LifecycleStatus, MessageRef } from '../../src/shared/types';
import { createStack, seedInteractions, waitFor, type TestStack } from '../support/stack';
import {
  archivedFingerprint,
  bySize,
  FAULTS_MODE,
  hotFingerprint,
  hotRowCount,
  killHard,
  openTransactionWrites,
  reporter,
  rowsInPlace,
  seededRandom,
  sleep,
  verifiedRowCount,
  type Random,
} from './support';

const ROWS = bySize({ short: 6_000, full: 20_000 });
const CHUNK_ROWS = 200;
const CYCLES = bySize({ short: 1, full: 3 });
/**
 * A kill may land after the phase's last chunk, which ends the phase's kills early; on a fast machine
 * that happens often enough to leave fewer than REQUIRED_POINTS. More cycles then run, up to this many.
 */
const MAX_CYCLES = bySize({ short: 1, full: 8 });
const KILLS_PER_PHASE = bySize({ short: 2, full: 4 });
const REQUIRED_POINTS = bySize({ short: 2, full: 20 });

interface KillPoint {
  cycle: number;
  phase: 'archive' | 'restore';
  /** Rows moved when the kill landed, of ROWS. */
  progress: number;
  landed: string;
}

describe('worker SIGKILLed at random points', () => {
  let stack: TestStack;
  let worker: ChildProcess;

  before(async () => {
    // A TTL far away: the test decides when each archive starts (stop with a past stoppedAt).
    stack = await createStack({ ttl: '1 hour', cleanupInterval: '1 hour', chunkRows: CHUNK_ROWS });
  });
  after(async () => stack?.close());

  it(
    `archives and restores with ${KILLS_PER_PHASE} kills per phase over ${CYCLES} cycle(s) or more, losing nothing`,
    { timeout: bySize({ short: 8, full: 60 }) * 60_000 },
    async (t) => {
      const say = reporter((m) => t.diagnostic(m));
      const rnd = seededRandom('sigkill', say);
      const ref: MessageRef = { kind: 'campaign', id: 'killed-worker' };
      await seedInteractions(stack.db, ref, ROWS, { batch: 2_000 });
      const original = await hotFingerprint(stack.db, ref);
      const points: KillPoint[] = [];
      worker = stack.spawnWorker();

      /** Where the archive was, from the rows the transaction open at the kill had written (a chunk's: one). */
      const chunkStage = (written: number): string =>
        written === 0 ? 'a transaction with nothing written yet' : `a chunk's transaction, ${written} row(s) written`;

      const status = async (): Promise<LifecycleStatus | null> => stack.lifecycle.status(ref.kind, ref.id).catch(() => null);

      /**
       * Kills the worker up to KILLS_PER_PHASE times while `progress` advances towards ROWS, then lets
       * the phase finish. Each kill is checked at once with `invariant`.
       */
      async function killDuring(
        cycle: number,
        phase: KillPoint['phase'],
        progress: () => Promise<number>,
        finished: () => Promise<boolean>,
        invariant: (openAtKill: string) => Promise<string>,
        r: Random,
        openNow: () => Promise<string> = () => Promise.resolve(''),
      ): Promise<void> {
        for (let k = 0; k < KILLS_PER_PHASE; k++) {
          const startedAt = await progress();
          const threshold = startedAt + Math.ceil(r.next() * 0.6 * (ROWS - startedAt)) + 1;
          const delayMs = r.int(0, 150);
          let reached = false;
          await waitFor(
            `${phase} to reach ${threshold} rows or finish`,
            async () => {
              const p = await progress();
              reached = p >= Math.max(threshold, startedAt + CHUNK_ROWS) && p < ROWS;
              return reached || (await finished());
            },
            180_000,
            20,
          );
          if (!reached) {
            say(`cycle ${cycle} ${phase}: finished before kill ${k + 1} (threshold ${threshold})`);
            return;
          }
          await sleep(delayMs);
          const openAtKill = await openNow();
          await killHard(worker);
          const p = await progress();
          const landed = await invariant(openAtKill);
          points.push({ cycle, phase, progress: p, landed });
          say(`cycle ${cycle} ${phase}: kill ${k + 1} at ${p}/${ROWS} rows (+${delayMs} ms): ${landed}`);
          worker = stack.spawnWorker();
        }
      }

      for (let cycle = 1; cycle <= MAX_CYCLES && (cycle <= CYCLES || points.length < REQUIRED_POINTS); cycle++) {
        if (cycle === 1) {
          // Stopped long ago: the deadline has passed, the actor archives at once.
          await stack.lifecycle.stop(ref.kind, ref.id, { stoppedAt: new Date(Date.now() - 2 * 3600_000).toISOString() });
        } else {
          // After a resume, a stop dated before it is ignored as out of order, so this one is dated now
          // and handled by a worker whose TTL is a second; once the archive has started, the usual
          // worker takes over, so that the restore re-arms the test's one-hour clock.
          await killHard(worker);
          worker = stack.spawnWorker({ INTERACTION_DATA_TTL: '1 second' });
          await stack.lifecycle.stop(ref.kind, ref.id);
          await waitFor('archive to start', async () => ((await status())?.state === 'archiving' ? true : null), 120_000, 50);
          await killHard(worker);
          worker = stack.spawnWorker();
        }
        await waitFor('archive to start', async () => ((await status())?.state === 'archiving' ? true : null), 60_000, 50);
        const generation = cycle;
        await killDuring(
          cycle,
          'archive',
          () => verifiedRowCount(stack.db, ref, generation),
          async () => (await status())?.state === 'expired',
          async (openAtKill) => {
            const { moved, hot } = await rowsInPlace(stack.db, ref, generation, ROWS);
            const roles = (
              (await stack
                .db('hot_tables')
                .where({ message_kind: ref.kind, message_id: ref.id })
                .orderBy('table_no')
                .pluck('role')) as string[]
            ).join('+');
            const where = openAtKill ? `; rolled back: ${openAtKill}` : '';
            if (hot === 0) return `after the drop, before the actor recorded the archive (${roles})`;
            if (!roles.includes('draining')) return `before the table was taken out of service (${roles})${where}`;
            return `draining, ${moved} of ${ROWS} rows stored (${roles})${where}`;
          },
          rnd,
          async () => (await openTransactionWrites(stack.db)).map(chunkStage).sort().join(' / '),
        );
        const expired = await waitFor(
          'expired',
          async () => {
            const s = await status();
            return s?.state === 'expired' ? s : null;
          },
          180_000,
        );
        assert.equal(expired.archive?.generation, generation);
        assert.equal(expired.archive?.rowCount, ROWS);
        assert.equal(await hotRowCount(stack.db, ref), 0);
        assert.deepEqual(
          await archivedFingerprint(stack.db, ref, generation, stack.stores),
          original,
          `archive of cycle ${cycle} holds exactly the original rows`,
        );

        const requestId = `sigkill-${cycle}-${rnd.int(0, 1e9)}`;
        await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'faults@example.com', requestId });
        const restoredDone = async () => (await status())?.lastRestore?.requestId === requestId;
        await killDuring(
          cycle,
          'restore',
          () => hotRowCount(stack.db, ref),
          restoredDone,
          async () => {
            const hot = await hotRowCount(stack.db, ref);
            assert.ok(hot <= ROWS, `no row doubled (hot ${hot})`);
            const [{ n }] = await stack
              .db('archive_chunks')
              .where({ message_kind: ref.kind, message_id: ref.id, generation })
              .count<{ n: number }[]>('* as n');
            return Number(n) > 0 ? `${hot} rows back, archive still whole` : `${hot} rows back, archive already dropped`;
          },
          rnd,
        );
        const restored = await waitFor(
          'restored',
          async () => {
            const s = await status();
            return s?.lastRestore?.requestId === requestId && s.state === 'stopped' ? s : null;
          },
          180_000,
        );
        assert.equal(restored.lastRestore?.rowCount, ROWS);
        assert.deepEqual(await hotFingerprint(stack.db, ref), original, `rows after restore ${cycle} equal the rows before`);
        assert.equal(await verifiedRowCount(stack.db, ref, generation), 0, 'long-term copy dropped after the restore');
        // Active again, so the next cycle's stop starts a new clock.
        await stack.lifecycle.resume(ref.kind, ref.id);
        await waitFor('active', async () => ((await status())?.state === 'active' ? true : null), 60_000, 50);
      }

      await killHard(worker);
      const byPhase = (p: KillPoint['phase']) => points.filter((x) => x.phase === p).length;
      say(`${points.length} kill points (${byPhase('archive')} in archives, ${byPhase('restore')} in restores), mode ${FAULTS_MODE}`);
      for (const kind of new Set(points.map((p) => p.landed.replace(/^\d+/, 'n')))) {
        say(`  landed: ${kind} × ${points.filter((p) => p.landed.replace(/^\d+/, 'n') === kind).length}`);
      }
      assert.ok(points.length >= REQUIRED_POINTS, `at least ${REQUIRED_POINTS} kill points landed mid-move (got ${points.length})`);
    },
  );
});
