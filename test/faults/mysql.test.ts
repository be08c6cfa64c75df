/**
 * MySQL failing under a running archive (and restore):
 *  - the worker's connections are KILLed (`KILL CONNECTION` of every connection of the worker's own
 *    MySQL user, found in information_schema.processlist) again and again;
 *  - the MySQL server itself is restarted mid-archive, once cleanly and once by SIGKILL (crash
 *    recovery). That server is a private MariaDB started for this test on a port of its own, so that
 *    other test runs sharing the machine's server are not disturbed.
 * Each time the activity fails, Temporal retries it, it resumes from its heartbeat, and at the end
 * the message's rows equal the rows before: count and checksum, none lost, none doubled.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDb, ensureDatabase, migrateToLatest, parseMysqlUrl, type Db } from '../../src/db/knex';
import { ensureLocalMysql, type LocalMysqlHandle } from '../../src/db/localMysql';
import { createLogger } from '../../src/logger';
import type { LifecycleStatus, MessageRef } from '../../src/shared/types';
import { freePort } from '../../src/temporal/devServer';
import { createStack, seedInteractions, waitFor, type TestStack } from '../support/stack';
import {
  archivedFingerprint,
  bySize,
  hotFingerprint,
  hotRowCount,
  rowsInPlace,
  killHard,
  reporter,
  seededRandom,
  sleep,
  verifiedRowCount,
} from './support';

const past = () => new Date(Date.now() - 2 * 3600_000).toISOString();

async function statusOf(stack: TestStack, ref: MessageRef): Promise<LifecycleStatus | null> {
  return stack.lifecycle.status(ref.kind, ref.id).catch(() => null);
}

describe('MySQL connections killed under a running archive and restore', () => {
  const ROWS = bySize({ short: 8_000, full: 30_000 });
  const KILL_ROUNDS = bySize({ short: 2, full: 4 });
  const user = `idfault_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(9).toString('hex');
  let stack: TestStack;
  let workerUrl: string;

  before(async () => {
    stack = await createStack({ ttl: '1 hour', cleanupInterval: '1 hour', chunkRows: 200 });
    // The worker logs in as a user of its own, so that its connections, and only they, can be found and killed.
    const database = parseMysqlUrl(stack.env.MYSQL_URL).database;
    for (const host of ['127.0.0.1', 'localhost', '::1']) {
      await stack.db.raw('CREATE USER ?@? IDENTIFIED BY ?', [user, host, password]);
      await stack.db.raw('GRANT ALL PRIVILEGES ON ??.* TO ?@?', [database, user, host]);
    }
    const u = new URL(stack.env.MYSQL_URL);
    u.username = user;
    u.password = password;
    workerUrl = u.toString();
  });
  after(async () => {
    for (const host of ['127.0.0.1', 'localhost', '::1'])
      await stack?.db.raw('DROP USER IF EXISTS ?@?', [user, host]).catch(() => undefined);
    await stack?.close();
  });

  async function killWorkerConnections(): Promise<number> {
    const [rows] = (await stack.db.raw('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?', [user])) as [{ id: number }[]];
    for (const { id } of rows) await stack.db.raw('KILL CONNECTION ?', [Number(id)]).catch(() => undefined);
    return rows.length;
  }

  it(
    'the activity retries after each KILL and finishes with nothing lost',
    { timeout: bySize({ short: 6, full: 15 }) * 60_000 },
    async (t) => {
      const say = reporter((m) => t.diagnostic(m));
      const rnd = seededRandom('mysql KILL', say);
      const ref: MessageRef = { kind: 'canvas', id: 'killed-connections' };
      await seedInteractions(stack.db, ref, ROWS, { batch: 2_000 });
      const original = await hotFingerprint(stack.db, ref);
      const worker = stack.spawnWorker({ MYSQL_URL: workerUrl });

      await stack.lifecycle.stop(ref.kind, ref.id, { stoppedAt: past() });
      let killedDuringArchive = 0;
      for (let round = 0; round < KILL_ROUNDS; round++) {
        const moved = await verifiedRowCount(stack.db, ref, 1);
        // Wait for the archive to make progress again (after the previous round's retry), then kill.
        await waitFor(
          'archive progress',
          async () => (await verifiedRowCount(stack.db, ref, 1)) > moved || (await statusOf(stack, ref))?.state === 'expired',
          120_000,
          20,
        );
        if ((await statusOf(stack, ref))?.state === 'expired') break;
        await sleep(rnd.int(0, 200));
        const n = await killWorkerConnections();
        killedDuringArchive += 1;
        const inPlace = await rowsInPlace(stack.db, ref, 1, ROWS);
        say(`archive: round ${round + 1}, killed ${n} connections at ${inPlace.moved}/${ROWS} rows stored, ${inPlace.hot} hot`);
      }
      const expired = await waitFor(
        'expired',
        async () => {
          const s = await statusOf(stack, ref);
          return s?.state === 'expired' ? s : null;
        },
        300_000,
      );
      assert.equal(expired.archive?.rowCount, ROWS);
      assert.equal(await hotRowCount(stack.db, ref), 0);
      assert.deepEqual(await archivedFingerprint(stack.db, ref, 1, stack.stores), original);
      assert.ok(killedDuringArchive > 0, 'the kills landed during the archive');

      await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'faults@example.com', requestId: 'mysql-kill-restore' });
      await waitFor('restore progress', async () => (await hotRowCount(stack.db, ref)) > 0, 120_000, 20);
      const n = await killWorkerConnections();
      say(`restore: killed ${n} connections at ${await hotRowCount(stack.db, ref)}/${ROWS} rows`);
      const restored = await waitFor(
        'restored',
        async () => {
          const s = await statusOf(stack, ref);
          return s?.lastRestore?.requestId === 'mysql-kill-restore' && s.state === 'stopped' ? s : null;
        },
        300_000,
      );
      assert.equal(restored.lastRestore?.rowCount, ROWS);
      assert.deepEqual(await hotFingerprint(stack.db, ref), original, 'rows after the restore equal the rows before');
      await killHard(worker);
    },
  );
});

describe('MySQL server restarted mid-archive', () => {
  const ROWS = bySize({ short: 8_000, full: 30_000 });
  const log = createLogger('faults', 'warn');
  let dataDir: string;
  let url: string;
  let server: LocalMysqlHandle | null = null;
  let db: Db;
  let stack: TestStack;

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'idfault-mysql-'));
    url = `mysql://root:${randomBytes(6).toString('hex')}@127.0.0.1:${await freePort()}/interaction_data_faults`;
    server = await ensureLocalMysql(url, log, { dataDir: path.join(dataDir, 'data') });
    assert.ok(server, 'a private server was started');
    await ensureDatabase(url);
    db = createDb(url);
    await migrateToLatest(db);
    stack = await createStack({ ttl: '1 hour', cleanupInterval: '1 hour', chunkRows: 200, env: { MYSQL_URL: url } });
  });
  after(async () => {
    await stack?.close();
    await db?.destroy();
    await server?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function restartServer(how: 'clean' | 'crash', downMs: number): Promise<void> {
    if (!server) throw new Error('no server');
    if (how === 'crash') process.kill(server.pid, 'SIGKILL');
    await server.stop();
    await sleep(downMs);
    server = await ensureLocalMysql(url, log, { dataDir: path.join(dataDir, 'data') });
    assert.ok(server, 'the private server came back');
  }

  it(
    'the activity retries through a clean restart and a crash of MySQL and loses nothing',
    { timeout: bySize({ short: 8, full: 15 }) * 60_000 },
    async (t) => {
      const say = reporter((m) => t.diagnostic(m));
      const rnd = seededRandom('mysql restart', say);
      const ref: MessageRef = { kind: 'campaign', id: 'mysql-restarted' };
      await seedInteractions(db, ref, ROWS, { batch: 2_000 });
      const original = await hotFingerprint(db, ref);
      const worker = stack.spawnWorker();

      await stack.lifecycle.stop(ref.kind, ref.id, { stoppedAt: past() });
      for (const how of ['clean', 'crash'] as const) {
        const moved = await verifiedRowCount(db, ref, 1);
        const threshold = moved + Math.ceil((ROWS - moved) * (0.1 + rnd.next() * 0.3));
        await waitFor(`archive to reach ${threshold} rows`, async () => (await verifiedRowCount(db, ref, 1)) >= threshold, 240_000, 20);
        await sleep(rnd.int(0, 150));
        // The test's own pool would hold dead connections across the restart: let it reconnect.
        await db.destroy();
        await restartServer(how, rnd.int(500, 3_000));
        db = createDb(url);
        const after = await rowsInPlace(db, ref, 1, ROWS);
        say(`${how} restart at ${after.moved}/${ROWS} rows stored, ${after.hot} hot: every row in place`);
      }
      const expired = await waitFor(
        'expired',
        async () => {
          const s = await statusOf(stack, ref);
          return s?.state === 'expired' ? s : null;
        },
        300_000,
      );
      assert.equal(expired.archive?.rowCount, ROWS);
      assert.equal(await hotRowCount(db, ref), 0);
      assert.deepEqual(await archivedFingerprint(db, ref, 1, stack.stores), original, 'the archive holds exactly the original rows');

      await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'faults@example.com', requestId: 'mysql-restart-restore' });
      await waitFor(
        'restored',
        async () => {
          const s = await statusOf(stack, ref);
          return s?.lastRestore?.requestId === 'mysql-restart-restore' && s.state === 'stopped' ? s : null;
        },
        300_000,
      );
      assert.deepEqual(await hotFingerprint(db, ref), original, 'rows after the restore equal the rows before');
      await killHard(worker);
    },
  );
});
