/**
 * The throttle between a move's chunks against MariaDB: it backs off while Threads_running is above its
 * limit and carries on once the server is quiet again; an archive stops at a pause, a restore does not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDb } from '../src/db/knex';
import { ArchivingPausedError, setArchivingPause } from '../src/storage/archivingPause';
import { MoveThrottle, threadsRunning } from '../src/storage/moveThrottle';
import { useThrowawayDatabase, withDatabase } from './support/stack';

describe('the move throttle', () => {
  const database = useThrowawayDatabase(['archiving_pause']);

  it('waits while MySQL runs more threads than its limit, then carries on', async () => {
    const db = database.get();
    const limit = 20;
    // A connection pool of its own, so that the busy statements run on connections of their own.
    const [[{ name }]] = (await db.raw('SELECT DATABASE() AS name')) as [[{ name: string }]];
    const base = process.env.TEST_MYSQL_URL || process.env.MYSQL_URL || 'mysql://root@127.0.0.1:3306/interaction_data';
    const busy = createDb(withDatabase(base, name), { min: 0, max: limit + 5 });
    const waits: string[] = [];
    try {
      const sleepers = Array.from({ length: limit + 5 }, () => busy.raw('SELECT SLEEP(3)').then(() => undefined));
      // The pool opens its connections first: the sleepers count as running once every one of them is in
      // (counted by their statement, not by Threads_running, which other test files' connections also move).
      const sleeping = async () => {
        const [rows] = (await db.raw("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(3)%'")) as [
          { n: number | string }[],
        ];
        return Number(rows[0].n);
      };
      const deadline = Date.now() + 2_000;
      while ((await sleeping()) < limit + 5) {
        assert.ok(Date.now() < deadline, 'the sleepers are in');
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok((await threadsRunning(db)) > limit, 'the sleepers count as running threads');
      const throttle = new MoveThrottle(db, { maxThreadsRunning: limit, niceRatio: 0, maxBackoffMs: 200 }, 'restore', {
        onWait: (why) => waits.push(why),
      });
      const started = performance.now();
      await throttle.afterChunk();
      const waited = performance.now() - started;
      await Promise.all(sleepers);
      assert.ok(waits.length > 0 && waits.every((w) => w === 'load'), `backed off for load: ${waits.join(',')}`);
      assert.ok(waited >= 1_000, `waited until the sleepers were done (${Math.round(waited)} ms)`);
    } finally {
      await busy.destroy();
    }
  });

  it('stops an archive when archiving is paused, and lets a restore through', async () => {
    const db = database.get();
    await setArchivingPause(db, { paused: true, by: 'test', reason: 'drill' });
    const settings = { maxThreadsRunning: 0, niceRatio: 0, maxBackoffMs: 100 };
    await assert.rejects(new MoveThrottle(db, settings, 'archive').afterChunk(), (err: unknown) => {
      assert.ok(err instanceof ArchivingPausedError);
      assert.match(err.message, /archiving is paused \(by test at .*: drill\)/);
      return true;
    });
    await new MoveThrottle(db, settings, 'restore').afterChunk();
    await setArchivingPause(db, { paused: false, by: 'test' });
    await new MoveThrottle(db, settings, 'archive').afterChunk();
  });
});
