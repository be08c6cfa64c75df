/**
 * Bounded readers (issue 24, point 5): a User Data CSV export held open by a client that stops reading
 * is cut off at its time limit, so an archive of the message it reads (whose DROP TABLE waits for the
 * export's metadata lock) completes shortly after that limit, and no pool connection is left behind. A
 * client that hangs up releases everything at once; an archive's DROP that still cannot get its lock
 * fails within its own bound, with the connection as it was, and the archive's next attempt finishes.
 *
 *   npx tsx scripts/test.ts test/boundedReaders.test.ts
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { STALL_LIMIT_MS } from '../activities/heartbeat';
import { buildApi, type ApiServer } from '../src/api/app';
import { loadConfig } from '../src/config';
import { createDb, type Db } from '../src/db/knex';
import type { MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import {
  archiveDropLockWaitMs,
  beginDrain,
  endDrain,
  ensureHotTable,
  HotTableDropTimeoutError,
  hotTableExists,
  messageHotTables,
} from '../src/storage/hotTables';
import { bearer, testAuth } from './support/auth';
import { createStack, seedInteractions, waitFor, withTimeout, type TestStack } from './support/stack';

const silent = pino({ level: 'silent' });
const EXPORT_LIMIT_MS = 3_000;

/** Connections the pool has handed out and not had back. */
function poolInUse(db: Db): number {
  return (db.client as { pool: { numUsed(): number } }).pool.numUsed();
}

/**
 * Users with long ids in a campaign variant with a long name: some 400 bytes of CSV per user, so the
 * file is far larger than every socket buffer between MySQL and a client that does not read.
 */
async function seedManyUsers(db: Db, ref: MessageRef, users: number, variantId: string): Promise<void> {
  const table = await ensureHotTable(db, ref, { rows: users });
  const digits =
    '(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)';
  const pad = 'x'.repeat(48);
  for (let from = 0; from < users; from += 10_000) {
    await db.raw(
      `INSERT INTO ?? (event_id, message_kind, message_id, user_id, event_type, variant_id, channel, occurred_at)
       SELECT CONCAT('ev-', ?, '-', n), ?, ?, CONCAT('user-', ?, '-', LPAD(n, 7, '0')), 'received', ?, 'email', '2026-01-10 10:00:00.000'
       FROM (SELECT ? + a.d + 10 * b.d + 100 * c.d + 1000 * e.d AS n FROM ${digits} a, ${digits} b, ${digits} c, ${digits} e) s
       WHERE n < ?`,
      [table.name, ref.id, ref.kind, ref.id, pad, variantId, from, users],
    );
  }
}

interface StalledExport {
  status: number;
  /** Reads the rest of the response; resolves once the connection has closed. */
  drain(): Promise<{ complete: boolean; bytes: number }>;
  hangUp(): void;
}

/** GETs the export (with a token of the export scope) and stops reading once the response has begun, as a stalled client does. */
function stalledExport(base: string, ref: MessageRef, token: string): Promise<StalledExport> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/v1/messages/${ref.kind}/${ref.id}/user-data.csv`, { headers: bearer(token) }, (res) => {
      let bytes = 0;
      const closed = new Promise<{ complete: boolean; bytes: number }>((done) => {
        res.on('data', (b: Buffer) => (bytes += b.length));
        res.on('error', () => undefined); // `aborted`: judged by `complete` below
        res.on('close', () => done({ complete: res.complete, bytes }));
      });
      res.pause();
      resolve({
        status: res.statusCode ?? 0,
        drain: () => {
          res.resume();
          return closed;
        },
        hangUp: () => req.destroy(),
      });
    });
    req.on('error', (err) => reject(err));
  });
}

describe('bounded readers', { timeout: 180_000 }, () => {
  let stack: TestStack;
  const apis: ApiServer[] = [];
  let auth: Awaited<ReturnType<typeof testAuth>>;
  /** Defines messages; reads the User Data CSV. */
  let messagesToken: string;
  let exportToken: string;

  /** The API on a real port (a stalled client needs real sockets), with the given export time limit. */
  async function listen(usersExportTimeLimitMs: number): Promise<string> {
    const api = buildApi({
      auth: auth.auth,
      lifecycle: stack.lifecycle,
      connection: stack.connection,
      db: stack.db,
      logger: silent,
      openapi: false,
      usersExportTimeLimitMs,
    });
    apis.push(api);
    await api.listen({ host: '127.0.0.1', port: 0 });
    return `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  }

  async function bigCampaign(id: string): Promise<MessageRef> {
    const ref: MessageRef = { kind: 'campaign', id };
    const variant = { id: `variant-${'v'.repeat(50)}`, name: `Variant ${'n'.repeat(240)}` };
    const res = await apis[0].inject({
      method: 'POST',
      url: '/v1/messages',
      headers: bearer(messagesToken),
      payload: { ...ref, name: `Big ${id}`, variants: [variant] },
    });
    assert.equal(res.statusCode, 201, res.body);
    await seedManyUsers(stack.db, ref, 100_000, variant.id);
    return ref;
  }

  before(async () => {
    stack = await createStack();
    auth = await testAuth(stack.db);
    messagesToken = await auth.token(['messages']);
    exportToken = await auth.token(['export']);
  });

  after(async () => {
    for (const api of apis) {
      api.server.closeAllConnections();
      await withTimeout(api.close(), 5_000, 'the API to close').catch(() => undefined);
    }
    // A failed run leaves an export's session holding its lock, which DROP DATABASE would wait on.
    const [rows] = (await stack.db.raw(
      "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND COMMAND <> 'Sleep'",
    )) as [{ id: number }[]];
    for (const { id } of rows) await stack.db.raw(`KILL ${Number(id)}`).catch(() => undefined);
    await stack?.close();
  });

  it('cuts a stalled export off at its time limit: the archive completes just after it, with every pool connection free', async () => {
    const base = await listen(EXPORT_LIMIT_MS);
    const ref = await bigCampaign('stalled');
    const started = Date.now();
    const client = await stalledExport(base, ref, exportToken);
    assert.equal(client.status, 200);
    const manifest = await withTimeout(
      archiveMessage(stack.db, ref, 1, { chunkRows: 5_000 }),
      EXPORT_LIMIT_MS + 30_000,
      'the archive, its DROP waiting on the stalled export',
    );
    assert.equal(manifest.rowCount, 100_000);
    assert.deepEqual(await messageHotTables(stack.db, ref), [], 'the table was dropped');
    await waitFor('every pool connection back', () => Promise.resolve(poolInUse(stack.db) === 0 || null), 5_000, 50);
    // What was buffered before the cut shows how the export ended: not as if the file were complete.
    const end = await withTimeout(client.drain(), 30_000, 'the stalled client to see its connection close');
    assert.equal(end.complete, false, `the export was cut short (${end.bytes} bytes)`);
    assert.ok(end.bytes > 0 && end.bytes < 30_000_000, `part of the file was sent (${end.bytes} bytes)`);
    assert.ok(Date.now() - started >= EXPORT_LIMIT_MS, 'the export ran until its limit');
  });

  it('releases the export at once when its client hangs up', async () => {
    const base = await listen(10 * 60_000);
    const ref = await bigCampaign('hangup');
    const client = await stalledExport(base, ref, exportToken);
    assert.equal(client.status, 200);
    await waitFor(
      'the export to hold its connection while it streams',
      () => Promise.resolve(poolInUse(stack.db) >= 1 || null),
      10_000,
      20,
    );
    client.hangUp();
    await waitFor('the export to give its connection back', () => Promise.resolve(poolInUse(stack.db) === 0 || null), 3_000, 50);
    const manifest = await withTimeout(
      archiveMessage(stack.db, ref, 1, { chunkRows: 5_000 }),
      30_000,
      'the archive after the client hung up',
    );
    assert.equal(manifest.rowCount, 100_000);
    assert.equal(poolInUse(stack.db), 0);
  });

  it('answers 503 when the limit passes before the first byte, and keeps no connection', async () => {
    await listen(50);
    // Its first line needs all 100,000 users grouped and sorted: far more than 50 ms.
    const ref = await bigCampaign('slow');
    const res = await apis[apis.length - 1].inject({
      method: 'GET',
      url: `/v1/messages/${ref.kind}/${ref.id}/user-data.csv`,
      headers: bearer(exportToken),
    });
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.json<{ error: string }>().error, 'export_time_limit');
    assert.match(res.json<{ message: string }>().message, /USERS_EXPORT_TIME_LIMIT/);
    await waitFor('every pool connection back', () => Promise.resolve(poolInUse(stack.db) === 0 || null), 3_000, 50);
  });

  it("bounds the archive's DROP: it fails, retryably, once its lock wait is over, and the next attempt finishes", async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'held' };
    // A table of its own, as a large message has: a segment's archive deletes its rows instead.
    const table = await ensureHotTable(stack.db, ref, { ownFromRows: 0 });
    await seedInteractions(stack.db, ref, 1_200);
    // A reader of the table that never lets go: its transaction holds the table's metadata lock.
    const reader = await stack.db.transaction();
    await reader.from(table.name).first('id');
    const one = createDb(stack.config.mysqlUrl, { min: 0, max: 1 });
    try {
      const draining = await beginDrain(one, ref);
      assert.ok(draining);
      const session = async () =>
        Number(((await one.raw('SELECT @@SESSION.lock_wait_timeout AS s')) as [{ s: string | number }[]])[0][0].s);
      const before = await session();
      const t0 = Date.now();
      await assert.rejects(
        withTimeout(endDrain(one, ref, draining, { lockWaitMs: 1_000 }), 20_000, 'the bounded DROP'),
        HotTableDropTimeoutError,
      );
      assert.ok(Date.now() - t0 < 10_000, `gave up after ${Date.now() - t0} ms`);
      assert.equal(poolInUse(one), 0, 'the DROP gave its connection back');
      assert.equal(await session(), before, "the connection's lock wait is as it was before the DROP");
      assert.ok(await hotTableExists(one, draining), 'the table is still there, draining');
    } finally {
      await reader.rollback();
      await one.destroy();
    }
    // The next attempt resumes from the draining table and drops it.
    const manifest = await withTimeout(archiveMessage(stack.db, ref, 1, { chunkRows: 500 }), 30_000, 'the next archive attempt');
    assert.equal(manifest.rowCount, 1_200);
    assert.deepEqual(await messageHotTables(stack.db, ref), []);
  });

  it('waits in a DROP longer than an export may run, and shorter than an attempt may go without progress', () => {
    const limit = loadConfig({}).usersExportTimeLimit.milliseconds;
    assert.equal(limit, 2 * 60_000);
    assert.ok(archiveDropLockWaitMs(limit) > limit);
    for (const l of [1_000, limit, 10 * 60_000, 24 * 3_600_000]) assert.ok(archiveDropLockWaitMs(l) < STALL_LIMIT_MS, `${l}`);
  });
});
