/**
 * POST /v1/interactions: a batch is checked whole before anything is written, stored in one
 * transaction, and stored once however often it is sent (also after its message expired and its rows
 * left the hot table). Late events for stopped and expired messages are kept (rule 11).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiServer } from '../../src/api/app';
import type { Db } from '../../src/db/knex';
import { ensureHotTable, hotTableName } from '../../src/storage/hotTables';
import { createStack, hotRowCount, hotRows, waitForState, type TestStack } from '../support/stack';
import { authFor, call, dataPlaneApi, ev, eventId } from './helpers';

/** Hot rows of every message: each message's current table or segment and any an archive is draining (a shared table once). */
async function allHotRows(db: Db): Promise<number> {
  const [rows] = (await db.raw(
    "SELECT DISTINCT COALESCE(shared_in, table_no) AS no FROM hot_tables WHERE role IN ('current', 'draining')",
  )) as [{ no: string }[]];
  const tables = rows.map((r) => r.no);
  let n = 0;
  for (const no of tables) n += Number((await db(hotTableName(no)).count<{ n: number }[]>('* as n'))[0].n);
  return n;
}

describe('ingestion', () => {
  let stack: TestStack;
  let api: ApiServer;

  before(async () => {
    stack = await createStack({ ttl: '6 seconds', cleanupInterval: '2 seconds' });
    await stack.startWorker();
    api = await dataPlaneApi(stack);
    await api.ready();
    for (const body of [
      { kind: 'campaign', id: 'promo', name: 'Promo', variants: [{ id: 'a', name: 'A' }] },
      { kind: 'campaign', id: 'late', name: 'Late arrivals' },
      { kind: 'canvas', id: 'journey', name: 'Journey', steps: [{ id: 's1', name: 'Step 1' }], variations: [{ id: 'v1', name: 'V1' }] },
    ]) {
      const res = await call(api, 'POST', '/v1/messages', body);
      assert.equal(res.status, 201, res.text);
    }
  });
  after(async () => {
    await api?.close();
    await stack?.close();
  });

  const counts = async () => ({
    interactions: await allHotRows(stack.db),
    ledger: Number((await stack.db('ingested_events').count<{ n: number }[]>('* as n'))[0].n),
    users: Number((await stack.db('users').count<{ n: number }[]>('* as n'))[0].n),
    analytics: Number((await stack.db('message_analytics').sum<{ n: number }[]>('count as n'))[0].n ?? 0),
  });

  const promo = (userId: string, extra: Record<string, unknown> = {}) =>
    ev({ type: 'received', messageKind: 'campaign', messageId: 'promo', userId, channel: 'email', variantId: 'a', ...extra });

  it('stores a batch once, however often it is retried, and counts it once in the aggregates', async () => {
    const start = await counts();
    const events = Array.from({ length: 50 }, (_, i) => promo(`retry-${i}`));
    const first = await call(api, 'POST', '/v1/interactions', { events });
    assert.deepEqual(first.body, { received: 50, stored: 50, duplicates: 0, erased: 0 });
    const again = await call(api, 'POST', '/v1/interactions', { events });
    assert.deepEqual(again.body, { received: 50, stored: 0, duplicates: 50, erased: 0 });
    // Half old, half new: only the new half is stored.
    const mixed = [...events.slice(0, 25), ...Array.from({ length: 25 }, (_, i) => promo(`retry-new-${i}`))];
    const third = await call(api, 'POST', '/v1/interactions', { events: mixed });
    assert.deepEqual(third.body, { received: 50, stored: 25, duplicates: 25, erased: 0 });
    const end = await counts();
    assert.equal(end.interactions - start.interactions, 75);
    assert.equal(end.ledger - start.ledger, 75);
    assert.equal(end.analytics - start.analytics, 75);
  });

  it('recognises an event imported with its ledger entry, and keeps no key on event ids in the hot tables', async () => {
    const ref = { kind: 'campaign', id: 'promo' } as const;
    const table = await ensureHotTable(stack.db, ref);
    // An import writes the hot row and the ledger entry together (docs/DATA.md, "Stored once").
    await stack.db.transaction(async (trx) => {
      await trx('ingested_events').insert({ event_id: 'imported-1' });
      await trx(table.name).insert({
        event_id: 'imported-1',
        message_kind: 'campaign',
        message_id: 'promo',
        user_id: 'imported-user',
        event_type: 'received',
        channel: 'email',
        occurred_at: '2026-01-05 00:00:00.000',
      });
    });
    // The same id exactly: ids are exact, and IMPORTED-1 would be another event.
    const res = await call(api, 'POST', '/v1/interactions', {
      events: [promo('imported-user', { eventId: 'imported-1' }), promo('fresh-user')],
    });
    assert.deepEqual(res.body, { received: 2, stored: 1, duplicates: 1, erased: 0 });
    assert.equal((await hotRows(stack.db, ref)).filter((r) => r.user_id === 'imported-user').length, 1);
    // The template, and the message's table made like it.
    const [keys] = (await stack.db.raw(
      "SELECT COUNT(*) AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('interactions', ?) AND COLUMN_NAME = 'event_id'",
      [table.name],
    )) as [{ n: number | string }[]];
    assert.equal(Number(keys[0].n), 0, 'the ledger alone keeps event ids unique: no index on event_id in the hot tables to maintain');
  });

  it('stores concurrent retries of the same batch once', async () => {
    const start = await counts();
    const events = Array.from({ length: 200 }, (_, i) => promo(`race-${i % 40}`));
    const results = await Promise.all(
      Array.from({ length: 4 }, () => call<{ stored: number; duplicates: number }>(api, 'POST', '/v1/interactions', { events })),
    );
    for (const r of results) assert.equal(r.status, 200, r.text);
    assert.equal(
      results.reduce((n, r) => n + r.body.stored, 0),
      200,
    );
    const end = await counts();
    assert.equal(end.interactions - start.interactions, 200);
    assert.equal(end.analytics - start.analytics, 200);
  });

  it('refuses a batch with bad events whole, naming the index and reason of each, and writes nothing', async () => {
    const start = await counts();
    const good = promo('fine');
    const events = [
      good,
      { ...promo('x'), eventId: 'has space' },
      { ...promo('y'), type: 'teleported' },
      ev({ type: 'received', messageKind: 'campaign', messageId: 'no-such-campaign', userId: 'z', channel: 'email' }),
      promo('v', { variantId: 'zz' }),
      ev({ type: 'received', messageKind: 'canvas', messageId: 'journey', userId: 'w', channel: 'push' }),
      { ...promo('u'), occurredAt: 'yesterday' },
      { ...promo('t'), surprise: true },
      'not an object',
      { ...promo('s'), eventId: good.eventId },
      ev({ type: 'entered_variation', messageKind: 'campaign', messageId: 'promo', userId: 'r' }),
    ];
    const res = await call<{ error: string; message: string; invalid: { index: number; reasons: string[] }[] }>(
      api,
      'POST',
      '/v1/interactions',
      { events },
    );
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error, 'invalid_events');
    assert.match(res.body.message, /^10 of 11 events are invalid; nothing from this batch was stored/);
    const by = new Map(res.body.invalid.map((b) => [b.index, b.reasons.join(' | ')]));
    assert.deepEqual([...by.keys()], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.match(by.get(1)!, /eventId must be 1-64 letters/);
    assert.match(by.get(2)!, /type must be one of received, opened/);
    assert.match(by.get(3)!, /unknown campaign "no-such-campaign": define it with POST \/v1\/messages/);
    assert.match(by.get(4)!, /campaign "promo" has no variant "zz" \(variants: a\)/);
    assert.match(by.get(5)!, /stepId is required for a received event of a canvas/);
    assert.match(by.get(6)!, /occurredAt must be an ISO-8601 instant/);
    assert.match(by.get(7)!, /unknown property "surprise"/);
    assert.match(by.get(8)!, /must be a JSON object/);
    assert.match(by.get(9)!, /repeats the event at index 0 of this batch/);
    assert.match(by.get(10)!, /entered_variation event is for Canvases only/);
    assert.deepEqual(await counts(), start);
  });

  it('refuses oversized batches and malformed bodies with clear errors, writing nothing', async () => {
    const start = await counts();
    const tooMany = Array.from({ length: 1001 }, (_, i) => promo(`big-${i}`));
    const many = await call<{ message: string }>(api, 'POST', '/v1/interactions', { events: tooMany });
    assert.equal(many.status, 413, many.text);
    assert.match(many.body.message, /a batch holds at most 1000 events; got 1001/);

    const huge = await api.inject({
      method: 'POST',
      url: '/v1/interactions',
      headers: { ...authFor(api, 'POST', '/v1/interactions'), 'content-type': 'application/json' },
      payload: JSON.stringify({ events: [promo('a', { alias: undefined })], pad: 'x'.repeat(3 * 1024 * 1024) }),
    });
    assert.equal(huge.statusCode, 413);
    assert.match(huge.json<{ message: string }>().message, /larger than 2097152 bytes.*at most 1000 events per batch/);

    const empty = await call<{ message: string }>(api, 'POST', '/v1/interactions', { events: [] });
    assert.equal(empty.status, 400);
    assert.match(empty.body.message, /at least one event/);
    const noEvents = await call<{ message: string }>(api, 'POST', '/v1/interactions', { items: [] });
    assert.equal(noEvents.status, 400);
    assert.match(noEvents.body.message, /unknown body property "items"/);
    const notJson = await api.inject({
      method: 'POST',
      url: '/v1/interactions',
      headers: { ...authFor(api, 'POST', '/v1/interactions'), 'content-type': 'application/json' },
      payload: '{"events": [',
    });
    assert.equal(notJson.statusCode, 400);
    assert.deepEqual(await counts(), start);
  });

  it('stores late events of stopped and expired messages, invisible while expired, and never re-stores an archived event', async () => {
    const ref = { kind: 'campaign', id: 'late' } as const;
    const late = (userId: string, id?: string) =>
      ev({ type: 'received', messageKind: 'campaign', messageId: 'late', userId, channel: 'sms', ...(id ? { eventId: id } : {}) });
    const archivedId = eventId('archived');
    assert.equal((await call(api, 'POST', '/v1/interactions', { events: [late('early', archivedId)] })).status, 200);
    assert.equal((await call(api, 'PUT', '/v1/messages/campaign/late', { status: 'stopped' })).status, 200);
    // Within the 6-second TTL, before the data expires.
    const whileStopped = await call<{ stored: number }>(api, 'POST', '/v1/interactions', { events: [late('while-stopped')] });
    assert.equal(whileStopped.body.stored, 1);
    await waitForState(stack, ref, 'expired', 30_000);
    assert.equal(await hotRowCount(stack.db, ref), 0, 'archived');

    // A late event for the expired message: stored, but no feature sees it.
    const lateRes = await call<{ stored: number }>(api, 'POST', '/v1/interactions', { events: [late('after-expiry')] });
    assert.equal(lateRes.body.stored, 1);
    assert.equal(await hotRowCount(stack.db, ref), 1);
    const page = await call<{ userIds: string[] }>(api, 'POST', '/v1/retargeting/evaluate', {
      filter: { type: 'received_message_from_campaign', messageId: 'late' },
    });
    assert.deepEqual(page.body.userIds, []);
    const profile = await call<{ campaignsReceived: unknown[] }>(api, 'GET', '/v1/users/after-expiry');
    assert.deepEqual(profile.body.campaignsReceived, []);

    // Re-sending the archived event: a duplicate, not a second row that would clash on restore.
    const resent = await call(api, 'POST', '/v1/interactions', { events: [late('early', archivedId)] });
    assert.deepEqual(resent.body, { received: 1, stored: 0, duplicates: 1, erased: 0 });

    // The next cleanup sweep moves the late row too; a restore brings all three back, once each.
    await stack.lifecycle.restore('campaign', 'late', { requestedBy: 'ops@example.com' });
    await waitForState(stack, ref, 'stopped', 30_000);
    const users = await call<{ userIds: string[] }>(api, 'POST', '/v1/retargeting/evaluate', {
      filter: { type: 'received_message_from_campaign', messageId: 'late' },
    });
    assert.deepEqual(users.body.userIds, ['after-expiry', 'early', 'while-stopped']);
  });
});
