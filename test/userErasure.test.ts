/**
 * A user's erasure on the real stack: DELETE /v1/users/{id} through each message's actor, on MySQL and
 * the stack's archive store (an S3 gateway of its own, or MySQL with TEST_ARCHIVE_STORE=mysql). The user
 * is gone from hot tables, archived chunks, summaries and pairs; every other row is untouched, value for
 * value; nothing brings the user's old rows back (late events, a retried batch, a restore), while
 * events after the erasure are a new life.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiServer } from '../src/api/app';
import type { ChunkRecord } from '../src/archive/store';
import { ingestEvents } from '../src/dataplane/ingest/ingest';
import type { InteractionEvent } from '../src/dataplane/ingest/events';
import { userHash, type ErasureView } from '../src/privacy/erasureRecords';
import type { MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import { INTERACTION_COLUMNS, type InteractionRow } from '../src/storage/chunkCodec';
import { restoreMessage } from '../src/storage/restorer';
import { StaleAttemptError } from '../src/storage/fence';
import { eraseUserFromMessage } from '../src/privacy/eraseMessage';
import { authFor, dataPlaneApi } from './dataplane/helpers';
import { createStack, hotRows, waitFor, waitForState, type TestStack } from './support/stack';

const USER = 'erase-me@example.com';
const OTHERS = Array.from({ length: 9 }, (_, i) => `other-${i}`);
const A: MessageRef = { kind: 'campaign', id: 'erase-archived' };
const B: MessageRef = { kind: 'canvas', id: 'erase-archived-and-late' };
const C: MessageRef = { kind: 'campaign', id: 'erase-hot' };
const D: MessageRef = { kind: 'campaign', id: 'erase-not-theirs' };

let seq = 0;
const BASE = Date.UTC(2026, 5, 1);

/** `count` events of a message, the user in every 10th, others in the rest. */
function events(ref: MessageRef, count: number, user = USER): InteractionEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    eventId: `${ref.id}-${seq++}`,
    type: (['received', 'opened', 'clicked'] as const)[i % 3],
    messageKind: ref.kind,
    messageId: ref.id,
    userId: i % 10 === 3 ? user : OTHERS[i % OTHERS.length],
    occurredAt: new Date(BASE + seq * 1000).toISOString(),
    ...(ref.kind === 'canvas' ? { stepId: 'step-1' } : { variantId: 'v1' }),
    ...(i % 3 === 2 ? { alias: 'cta' } : {}),
  }));
}

/** Every row of a message, hot and archived, by id, as JSON of the row. */
async function allRows(stack: TestStack, ref: MessageRef): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const r of await hotRows(stack.db, ref)) out.set(String(r.id), JSON.stringify(r));
  const where = { message_kind: ref.kind, message_id: ref.id };
  const chunks = await stack
    .db('archive_chunks')
    .where(where)
    .select<(ChunkRecord & { generation: number })[]>('generation', 'seq', 'checksum', 'row_count', 'store', 'object_key');
  for (const c of chunks) {
    const { columns, rowCount } = await stack.stores.get(c.store).read(stack.db, { ...where, generation: c.generation }, c);
    for (let i = 0; i < rowCount; i++) {
      const row = Object.fromEntries(INTERACTION_COLUMNS.map((col, ci) => [col, columns[ci][i]])) as InteractionRow;
      out.set(String(row.id), JSON.stringify(row));
    }
  }
  return out;
}

describe("a user's erasure, hot and archived", () => {
  let stack: TestStack;
  let api: ApiServer;
  const before_ = new Map<string, Map<string, string>>();
  const theirs = new Map<string, number>();
  let originalBatch: InteractionEvent[] = [];

  const call = async <T>(method: 'GET' | 'DELETE', url: string) => {
    const res = await api.inject({ method, url, headers: authFor(api, method, url) });
    return { status: res.statusCode, body: res.json<T>() };
  };

  before(async () => {
    stack = await createStack({ chunkRows: 100 });
    await stack.startWorker();
    api = await dataPlaneApi(stack);
    originalBatch = events(A, 1_000);
    await ingestEvents(stack.db, originalBatch);
    await ingestEvents(stack.db, events(B, 600));
    await ingestEvents(stack.db, events(C, 200));
    await ingestEvents(stack.db, events(D, 200, OTHERS[0]));
    await archiveMessage(stack.db, A, 1, { chunkRows: 100, stores: stack.stores });
    await archiveMessage(stack.db, B, 1, { chunkRows: 100, stores: stack.stores });
    await ingestEvents(stack.db, events(B, 150));
    for (const ref of [A, B, C, D]) {
      const rows = await allRows(stack, ref);
      before_.set(ref.id, rows);
      theirs.set(ref.id, [...rows.values()].filter((r) => (JSON.parse(r) as InteractionRow).user_id === USER).length);
    }
  });

  after(async () => {
    await api?.close();
    await stack?.close();
  });

  it('removes the user from every hot table, archived chunk, summary and pair, and no other row', async () => {
    const started = await call<{ requestId: string; statusUrl: string; attached: boolean }>(
      'DELETE',
      `/v1/users/${encodeURIComponent(USER)}`,
    );
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.equal(started.body.attached, false);
    const view = await waitFor(
      'the erasure to finish',
      async () => {
        const v = (await call<ErasureView>('GET', started.body.statusUrl)).body;
        return v.status === 'running' ? null : v;
      },
      90_000,
    );
    assert.equal(view.status, 'done', JSON.stringify(view));
    assert.equal(view.userId, null, 'a finished request keeps no user id');
    assert.deepEqual(view.messages, { total: 3, done: 3, failed: 0 });
    assert.equal(view.hotRows + view.archivedRows, (theirs.get(A.id) ?? 0) + (theirs.get(B.id) ?? 0) + (theirs.get(C.id) ?? 0));
    assert.equal(view.archivedRows, 100 + 60, 'A: 1,000 archived rows, B: 600, the user in every 10th');
    // Every chunk of A and B holds the user (every 10th row): each is read once and rewritten.
    assert.equal(view.chunksRewritten, 10 + 6);
    assert.ok(view.chunksRead >= view.chunksRewritten && view.chunksRead <= view.chunksRewritten + 2, `${view.chunksRead} chunks read`);

    for (const ref of [A, B, C, D]) {
      const now = await allRows(stack, ref);
      const want = new Map(
        [...(before_.get(ref.id) as Map<string, string>)].filter(([, r]) => (JSON.parse(r) as InteractionRow).user_id !== USER),
      );
      assert.deepEqual(now, want, `${ref.kind}:${ref.id}: every other row unchanged, the user's gone`);
    }
    const db = stack.db;
    assert.equal((await db('users').where({ id: USER })).length, 0);
    assert.equal((await db('user_messages').where({ user_id: USER })).length, 0);
    assert.equal((await db('user_message_receipts').where({ user_id: USER })).length, 0);
    assert.equal((await db('user_clicked_aliases').where({ user_id: USER })).length, 0);
    assert.ok((await db('users').where({ id: OTHERS[0] })).length === 1, 'other users keep their summaries');
    assert.equal((await db('archive_orphans')).length, 0, 'every replaced chunk object is deleted');
    // The manifests were counted again: each generation is what its chunks say.
    for (const ref of [A, B]) {
      const m = await db('archive_manifests')
        .where({ message_kind: ref.kind, message_id: ref.id, generation: 1 })
        .first<{ row_count: number }>();
      assert.equal(Number(m?.row_count), ref === A ? 900 : 540);
    }
    // The audit trail no longer names the user; the access export finds nothing.
    assert.equal((await db('audit_log').where({ target: USER })).length, 0);
    const access = await api.inject({
      method: 'GET',
      url: `/v1/users/${encodeURIComponent(USER)}/interactions`,
      headers: authFor(api, 'GET', '/v1/users/x/interactions'),
    });
    assert.equal(access.statusCode, 404);

    // The same request again is the same erasure, and changes nothing.
    const again = await call<{ requestId: string; attached: boolean }>(
      'DELETE',
      `/v1/users/${encodeURIComponent(USER)}?requestId=${started.body.requestId}`,
    );
    assert.equal(again.status, 200);
    assert.equal(again.body.requestId, started.body.requestId);
  });

  it('lets nothing bring the old rows back: late events, a retried batch, a restore; a new life is kept', async () => {
    const db = stack.db;
    const late = { ...events(C, 1)[0], userId: USER, occurredAt: new Date(BASE).toISOString() };
    assert.deepEqual(await ingestEvents(db, [late]), { received: 1, stored: 0, duplicates: 0, erased: 1 });
    const retried = await ingestEvents(db, originalBatch);
    assert.equal(retried.stored, 0);
    const restored = await restoreMessage(db, A, 1, { stores: stack.stores });
    assert.equal(restored.rowCount, 900);
    assert.equal((await hotRows(db, A)).filter((r) => r.user_id === USER).length, 0);

    const newLife = { ...events(C, 1)[0], userId: USER, occurredAt: new Date(Date.now() + 1_000).toISOString() };
    assert.deepEqual(await ingestEvents(db, [newLife]), { received: 1, stored: 1, duplicates: 0, erased: 0 });
    assert.equal((await hotRows(db, C)).filter((r) => r.user_id === USER).length, 1);
    assert.equal((await db('user_messages').where({ user_id: USER })).length, 1);
    assert.equal((await db('users').where({ id: USER })).length, 1);
  });

  it("waits for the message's archive or restore under way, then erases from what it left", async () => {
    const E: MessageRef = { kind: 'campaign', id: 'erase-while-moving' };
    const whoOf = (i: number) => (i % 10 === 3 ? 'race-1' : i % 10 === 7 ? 'race-2' : OTHERS[i % OTHERS.length]);
    const batch = (from: number, n: number): InteractionEvent[] =>
      Array.from({ length: n }, (_, k) => ({
        eventId: `${E.id}-${from + k}`,
        type: 'received' as const,
        messageKind: E.kind,
        messageId: E.id,
        userId: whoOf(from + k),
        occurredAt: new Date(BASE + (from + k) * 1000).toISOString(),
        variantId: 'v1',
      }));
    for (let i = 0; i < 20_000; i += 2_000) await ingestEvents(stack.db, batch(i, 2_000));
    const original = await allRows(stack, E);
    const without = (...users: string[]) =>
      new Map([...original].filter(([, r]) => !users.includes((JSON.parse(r) as InteractionRow).user_id as string)));
    const erase = async (user: string) => {
      const started = await call<{ statusUrl: string }>('DELETE', `/v1/users/${user}`);
      assert.equal(started.status, 202);
      return waitFor(
        `the erasure of ${user}`,
        async () => {
          const v = (await call<ErasureView>('GET', started.body.statusUrl)).body;
          return v.status === 'running' ? null : v;
        },
        120_000,
      );
    };
    const manifest = () =>
      stack
        .db('archive_manifests')
        .where({ message_kind: E.kind, message_id: E.id, generation: 1 })
        .first<{ status: string } | undefined>('status');

    await stack.lifecycle.stop(E.kind, E.id, { stoppedAt: new Date(Date.now() - 3_600_000).toISOString() });
    await waitFor('the archive to begin', async () => ((await manifest())?.status === 'archiving' ? true : null), 60_000, 20);
    const first = await erase('race-1');
    assert.equal(first.status, 'done');
    assert.equal(first.hotRows + first.archivedRows, 2_000);
    await waitForState(stack, E, 'expired');
    assert.deepEqual(await allRows(stack, E), without('race-1'));

    await stack.lifecycle.restore(E.kind, E.id, { requestedBy: 'ops@example.com' });
    await waitFor('the restore to begin', async () => ((await manifest())?.status === 'restoring' ? true : null), 60_000, 20);
    const second = await erase('race-2');
    assert.equal(second.status, 'done');
    await waitForState(stack, E, 'stopped');
    assert.deepEqual(await allRows(stack, E), without('race-1', 'race-2'));
  });

  it('stops an archive attempt of an earlier run that is still going, then erases what it left', async () => {
    const F: MessageRef = { kind: 'canvas', id: 'erase-beside-stale-attempt' };
    const batch = Array.from({ length: 3_000 }, (_, i) => ({
      eventId: `${F.id}-${i}`,
      type: 'received' as const,
      messageKind: F.kind,
      messageId: F.id,
      userId: i % 10 === 3 ? 'stale-1' : OTHERS[i % OTHERS.length],
      occurredAt: new Date(BASE + i * 1000).toISOString(),
      stepId: 'step-1',
    }));
    await ingestEvents(stack.db, batch);
    const original = await allRows(stack, F);
    let erased = false;
    // The attempt pauses after its second chunk while the erasure runs, as one a reset actor left behind would go on.
    const stale = archiveMessage(stack.db, F, 1, {
      chunkRows: 100,
      stores: stack.stores,
      onProgress: async (_cursor, moved) => {
        if (moved < 200 || erased) return;
        erased = true;
        await eraseUserFromMessage(stack.db, stack.stores, {
          ref: F,
          userId: 'stale-1',
          erasedThrough: new Date().toISOString(),
          requestId: 'stale-attempt',
        });
      },
    });
    await assert.rejects(stale, StaleAttemptError);
    await archiveMessage(stack.db, F, 1, { chunkRows: 100, stores: stack.stores });
    const want = new Map([...original].filter(([, r]) => (JSON.parse(r) as InteractionRow).user_id !== 'stale-1'));
    assert.deepEqual(await allRows(stack, F), want);
    assert.equal((await hotRows(stack.db, F)).length, 0, 'the archive finished');
  });

  it('a restore leaves out a user whose erasure failed in the message, until the erasure is done again', async () => {
    const G: MessageRef = { kind: 'campaign', id: 'erase-failed-then-restored' };
    await ingestEvents(
      stack.db,
      events(G, 300, 'failed-1').map((e, i) => (i % 10 === 3 ? e : { ...e, userId: OTHERS[i % 9] })),
    );
    await ingestEvents(stack.db, events(G, 100));
    const original = await allRows(stack, G);
    await archiveMessage(stack.db, G, 1, { chunkRows: 100, stores: stack.stores });
    // As an erasure whose part in G failed (a chunk that did not pass its check) leaves it.
    await stack.db('erasure_requests').insert({
      request_id: 'failed-in-G',
      user_id: 'failed-1',
      user_hash: userHash('failed-1'),
      requested_at: '2026-12-01 00:00:00.000',
      erased_through: '2026-12-01 00:00:00.000',
      status: 'failed',
      messages_total: 1,
    });
    await stack.db('erasure_messages').insert({ request_id: 'failed-in-G', message_kind: G.kind, message_id: G.id, status: 'failed' });
    await restoreMessage(stack.db, G, 1, { stores: stack.stores });
    const want = new Map([...original].filter(([, r]) => (JSON.parse(r) as InteractionRow).user_id !== 'failed-1'));
    assert.ok(want.size < original.size);
    assert.deepEqual(await allRows(stack, G), want);
  });

  it('erases from two messages whose ids differ only in case: they are two messages', async () => {
    const user = 'case-user@example.com';
    const upper: MessageRef = { kind: 'campaign', id: 'Erase-Case' };
    const lower: MessageRef = { kind: 'campaign', id: 'erase-case' };
    await ingestEvents(stack.db, [...events(upper, 20, user), ...events(lower, 20, user)]);
    const started = await call<{ requestId: string; statusUrl: string }>('DELETE', `/v1/users/${encodeURIComponent(user)}`);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const view = await waitFor(
      'the erasure to finish',
      async () => {
        const v = (await call<ErasureView>('GET', started.body.statusUrl)).body;
        return v.status === 'running' ? null : v;
      },
      60_000,
    );
    assert.equal(view.status, 'done', JSON.stringify(view));
    assert.deepEqual(view.messages, { total: 2, done: 2, failed: 0 });
    for (const ref of [upper, lower]) {
      const rows = await hotRows(stack.db, ref);
      assert.equal(rows.length, 18, `${ref.id}: the other users' rows stay`);
      assert.ok(rows.every((r) => r.user_id !== user && r.message_id === ref.id));
    }
  });

  it('asks for the privacy scope and refuses a malformed user id', async () => {
    const bad = await call('DELETE', `/v1/users/${encodeURIComponent(' padded ')}`);
    assert.equal(bad.status, 400);
    const exportOnly = await api.inject({
      method: 'DELETE',
      url: '/v1/users/someone',
      headers: authFor(api, 'GET', '/v1/users/x/interactions'),
    });
    assert.equal(exportOnly.statusCode, 403);
    assert.equal((await stack.db('erasure_requests').where({ user_id: 'someone' })).length, 0);
  });
});
