/**
 * A user's interaction rows, hot and archived, without a restore: GET /v1/users/{id}/interactions and
 * the reader under it, on MySQL and the stack's archive store (an S3 gateway of its own, or MySQL
 * with TEST_ARCHIVE_STORE=mysql).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { buildApi, type ApiServer } from '../src/api/app';
import type { ArchiveStores } from '../src/archive/store';
import { emptyAccessStats, userInteractions, type UserInteraction } from '../src/privacy/userInteractions';
import { isoTime } from '../src/dataplane/sql';
import type { MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import type { InteractionRow } from '../src/storage/chunkCodec';
import { asCaller, testAuth, type TestAuth } from './support/auth';
import { createStack, hotRows, seedInteractions, type TestStack } from './support/stack';

const USER = 'user-5';
const A: MessageRef = { kind: 'campaign', id: 'access-archived' };
const B: MessageRef = { kind: 'canvas', id: 'access-archived-and-late' };
const C: MessageRef = { kind: 'campaign', id: 'access-hot' };

async function collect(rows: AsyncIterable<UserInteraction>): Promise<UserInteraction[]> {
  const out: UserInteraction[] = [];
  for await (const r of rows) out.push(r);
  return out;
}

const mine = (rows: InteractionRow[]) => rows.filter((r) => r.user_id === USER);

describe("a user's interaction rows, hot and archived, without a restore", () => {
  let stack: TestStack;
  let api: ApiServer;
  let exportToken: string;
  let messagesToken: string;
  /** Chunks of 500 rows (in id order) of A and B that hold the user. */
  let holdingChunks = 0;
  /** Each message's rows of USER as they were hot, and where they should be found now. */
  const expected = new Map<string, { row: InteractionRow; source: 'hot' | 'archived'; generation: number | null }>();

  /** The API on the stack, reading archived chunks from `archiveStores` (the MySQL store alone when not given). */
  const accessApi = (auth: TestAuth, archiveStores?: ArchiveStores): ApiServer =>
    buildApi({
      auth: auth.auth,
      lifecycle: stack.lifecycle,
      connection: stack.connection,
      db: stack.db,
      logger: pino({ level: 'silent' }),
      openapi: false,
      archiveStores,
    });

  before(async () => {
    stack = await createStack();
    const auth = await testAuth(stack.db);
    exportToken = await auth.token(['export']);
    messagesToken = await auth.token(['messages']);
    api = accessApi(auth, stack.stores);
    const db = stack.db;
    // A: archived whole; B: archived, then late rows hot in its next table; C: hot only.
    await seedInteractions(db, A, 3_000);
    await seedInteractions(db, B, 2_000);
    await seedInteractions(db, C, 500);
    for (const ref of [A, B]) {
      const rows = await hotRows(db, ref);
      holdingChunks += new Set(rows.flatMap((r, i) => (r.user_id === USER ? [Math.floor(i / 500)] : []))).size;
      for (const row of mine(rows)) expected.set(row.id as string, { row, source: 'archived', generation: 1 });
    }
    for (const row of mine(await hotRows(db, C))) expected.set(row.id as string, { row, source: 'hot', generation: null });
    await archiveMessage(db, A, 1, { chunkRows: 500, stores: stack.stores });
    await archiveMessage(db, B, 1, { chunkRows: 500, stores: stack.stores });
    await seedInteractions(db, B, 300);
    for (const row of mine(await hotRows(db, B))) expected.set(row.id as string, { row, source: 'hot', generation: null });
    // Ingestion writes these pairs; the rows above were inserted straight into the tables.
    await db('user_messages')
      .insert([A, B, C].map((m) => ({ user_id: USER, message_kind: m.kind, message_id: m.id })))
      .onConflict()
      .ignore();
  });

  after(async () => {
    await api?.close();
    await stack?.close();
  });

  it('finds every row of the user, marked hot or archived, reading only the chunks that may hold them', async () => {
    const stats = emptyAccessStats();
    const got = await collect(userInteractions(stack.db, stack.stores, USER, stats));
    assert.equal(got.length, expected.size);
    assert.ok(expected.size >= 6, `the data set gives the user ${expected.size} rows`);
    for (const item of got) {
      const want = expected.get(item.row.id as string);
      assert.ok(want, `row ${String(item.row.id)} is not one of the user's`);
      assert.deepEqual(item.row, want.row);
      assert.equal(item.source, want.source, `row ${String(item.row.id)}`);
      assert.equal(item.generation, want.generation);
    }
    assert.deepEqual(
      { messages: stats.messages, hotTablesRead: stats.hotTablesRead, chunksConsidered: stats.chunksConsidered, rows: stats.rows },
      { messages: 3, hotTablesRead: 2, chunksConsidered: 10, rows: expected.size },
    );
    // The filters let through the chunks holding the user and at most a stray other.
    assert.ok(holdingChunks < 10, `the user is in ${holdingChunks} of the 10 chunks`);
    assert.ok(stats.chunksRead >= holdingChunks && stats.chunksRead <= holdingChunks + 1, `${stats.chunksRead} chunks read`);
    // Someone in none of the messages reads no chunk at all.
    const nobody = emptyAccessStats();
    assert.deepEqual(await collect(userInteractions(stack.db, stack.stores, 'user-never-seen', nobody)), []);
    assert.equal(nobody.chunksConsidered, 0);
  });

  it('streams them as NDJSON or CSV to a caller with the export scope, and only to one', async () => {
    const caller = asCaller(api, exportToken);
    const ndjson = await caller.inject({ method: 'GET', url: `/v1/users/${USER}/interactions` });
    assert.equal(ndjson.statusCode, 200, ndjson.body);
    assert.match(String(ndjson.headers['content-type']), /^application\/x-ndjson/);
    const lines = ndjson.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, expected.size);
    for (const line of lines) {
      const want = expected.get(String(line.id));
      assert.ok(want);
      assert.equal(line.source, want.source);
      assert.equal(line.generation, want.generation);
      assert.equal(line.event_id, want.row.event_id);
      assert.equal(line.occurred_at, isoTime(want.row.occurred_at));
    }

    const csv = await caller.inject({ method: 'GET', url: `/v1/users/${USER}/interactions?format=csv` });
    assert.equal(csv.statusCode, 200, csv.body);
    assert.match(String(csv.headers['content-type']), /^text\/csv/);
    const records = csv.body.trimEnd().split('\r\n');
    assert.equal(
      records[0],
      'source,generation,id,event_id,message_kind,message_id,user_id,event_type,variant_id,step_id,variation_id,alias,channel,occurred_at',
    );
    assert.equal(records.length, expected.size + 1);

    assert.equal((await caller.inject({ method: 'GET', url: '/v1/users/user-never-seen/interactions' })).statusCode, 404);
    assert.equal((await caller.inject({ method: 'GET', url: `/v1/users/${USER}/interactions?format=xml` })).statusCode, 400);
    assert.equal((await asCaller(api, messagesToken).inject({ method: 'GET', url: `/v1/users/${USER}/interactions` })).statusCode, 403);
    assert.equal((await api.inject({ method: 'GET', url: `/v1/users/${USER}/interactions` })).statusCode, 401);
  });

  it('answers 503 before sending anything when a chunk is in a store the API has no settings for', async (t) => {
    if (stack.config.archiveStore !== 's3') return t.skip('the stack archives to MySQL, which every API reads');
    const auth = await testAuth(stack.db);
    const bare = accessApi(auth);
    try {
      const res = await asCaller(bare, await auth.token(['export'])).inject({ method: 'GET', url: `/v1/users/${USER}/interactions` });
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.json<{ error: string }>().error, 'archive_store_not_configured');
      assert.match(res.json<{ message: string }>().message, /s3 archive store.*S3_BUCKET/);
      // C's rows are hot only: a user whose messages are all hot needs no store.
      await stack.db('user_messages').insert({ user_id: 'user-6', message_kind: C.kind, message_id: C.id }).onConflict().ignore();
      assert.equal(
        (await asCaller(bare, await auth.token(['export'])).inject({ method: 'GET', url: '/v1/users/user-6/interactions' })).statusCode,
        200,
      );
    } finally {
      await bare.close();
    }
  });
});
