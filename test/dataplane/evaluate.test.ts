/**
 * Retargeting evaluation pages through every match exactly once; the users export and the API's input
 * rules; the data plane in the OpenAPI document.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiServer } from '../../src/api/app';
import { lifecycleWorkflowId } from '../../src/shared/workflowId';
import { createStack, type TestStack } from '../support/stack';
import { call, dataPlaneApi, ev } from './helpers';

describe('evaluation pages, export limits and the API document', () => {
  let stack: TestStack;
  let api: ApiServer;

  before(async () => {
    stack = await createStack();
    // A stopped message's creation waits for its actor's answer to the stop Update: a worker answers it.
    await stack.startWorker();
    api = await dataPlaneApi(stack);
    await api.ready();
    assert.equal((await call(api, 'POST', '/v1/messages', { kind: 'campaign', id: 'big', name: 'Big send' })).status, 201);
    // 2,500 recipients, some of them twice, sent in batches of 1,000.
    const events = Array.from({ length: 3000 }, (_, i) =>
      ev({
        type: 'received',
        messageKind: 'campaign',
        messageId: 'big',
        userId: `user-${String(i % 2500).padStart(5, '0')}`,
        channel: 'email',
      }),
    );
    for (let i = 0; i < events.length; i += 1000) {
      const res = await call(api, 'POST', '/v1/interactions', { events: events.slice(i, i + 1000) });
      assert.equal(res.status, 200, res.text);
    }
  });
  after(async () => {
    await api?.close();
    await stack?.close();
  });

  it('pages through every recipient once, in order, with the cursor it returns', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: { userIds: string[]; nextCursor: string | null } } = await call(
        api,
        'POST',
        '/v1/retargeting/evaluate',
        {
          filter: { type: 'received_message_from_campaign', messageId: 'big' },
          limit: 1000,
          ...(cursor ? { cursor } : {}),
        },
      );
      assert.equal(res.status, 200);
      seen.push(...res.body.userIds);
      cursor = res.body.nextCursor;
      pages += 1;
    } while (cursor);
    assert.equal(pages, 3);
    assert.equal(seen.length, 2500);
    assert.equal(new Set(seen).size, 2500);
    assert.deepEqual(seen, [...seen].sort());
  });

  it('refuses bad filters, cursors and limits with a 400 naming the problem', async () => {
    const bad = async (body: unknown, pattern: RegExp) => {
      const res = await call<{ message: string }>(api, 'POST', '/v1/retargeting/evaluate', body);
      assert.equal(res.status, 400, res.text);
      assert.match(res.body.message, pattern);
    };
    await bad(
      { filter: { type: 'received_message_from_campaign', messageId: 'big' }, cursor: 'bm90LW91cnM' },
      /cursor is not one this API returned/,
    );
    await bad({ filter: { type: 'received_message_from_campaign', messageId: 'big' }, limit: 0 }, /limit/);
    await bad({ filter: { type: 'received_message_from_campaign' } }, /filter: messageId is required/);
    await bad({ filter: { type: 'no_such_filter' } }, /filter\.type/);
    await bad({ filter: { type: 'hard_bounced', messageId: 'big' } }, /messageId does not apply to hard_bounced/);
    const unknown = await call<{ message: string }>(api, 'POST', '/v1/retargeting/evaluate', {
      filter: { type: 'received_message_from_campaign', messageId: 'nope' },
    });
    assert.equal(unknown.status, 200, 'an unknown message matches nobody');
    assert.deepEqual((unknown.body as unknown as { userIds: string[] }).userIds, []);
  });

  it('exports at most 50 users, only the fields asked for, and lists unknown ids apart', async () => {
    const ids = Array.from({ length: 51 }, (_, i) => `user-${String(i).padStart(5, '0')}`);
    const tooMany = await call<{ message: string }>(api, 'POST', '/v1/users/export', { external_ids: ids });
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.body.message, /external_ids/);
    const badField = await call<{ message: string }>(api, 'POST', '/v1/users/export', {
      external_ids: ['user-00001'],
      fields_to_export: ['email'],
    });
    assert.equal(badField.status, 400);
    assert.match(badField.body.message, /fields_to_export\[0\]/);
    const ok = await call<{ users: Record<string, unknown>[]; invalid_user_ids: string[]; message: string }>(
      api,
      'POST',
      '/v1/users/export',
      {
        external_ids: ['user-00001', 'ghost', 'USER-00001'],
        fields_to_export: ['external_id', 'campaigns_received'],
      },
    );
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.message, 'success');
    assert.deepEqual(ok.body.invalid_user_ids, ['ghost', 'USER-00001'], 'user ids are exact: USER-00001 is not user-00001');
    assert.equal(ok.body.users.length, 1);
    assert.deepEqual(Object.keys(ok.body.users[0]).sort(), ['campaigns_received', 'external_id']);
    assert.equal((ok.body.users[0].campaigns_received as { api_campaign_id: string }[])[0].api_campaign_id, 'big');
    const missing = await call(api, 'GET', '/v1/users/ghost');
    assert.equal(missing.status, 404);
  });

  it('refuses bad message definitions with a 400 naming the field', async () => {
    const bad = async (method: 'POST' | 'PUT', url: string, body: unknown, pattern: RegExp, status = 400) => {
      const res = await call<{ message: string }>(api, method, url, body);
      assert.equal(res.status, status, res.text);
      assert.match(res.body.message, pattern);
    };
    await bad(
      'POST',
      '/v1/messages',
      { kind: 'campaign', id: 'x', name: 'X', steps: [{ id: 's', name: 'S' }] },
      /steps do not apply to a campaign/,
    );
    await bad(
      'POST',
      '/v1/messages',
      {
        kind: 'campaign',
        id: 'x',
        name: 'X',
        variants: [
          { id: 'a', name: 'A' },
          { id: 'a', name: 'B' },
        ],
      },
      /appears twice/,
    );
    await bad('POST', '/v1/messages', { kind: 'campaign', id: 'bad id', name: 'X' }, /^id /);
    await bad('POST', '/v1/messages', { kind: 'campaign', id: 'x', name: '' }, /^name /);
    await bad('POST', '/v1/messages', { kind: 'campaign', id: 'big', name: 'Again' }, /already exists/, 409);
    await bad('PUT', '/v1/messages/campaign/missing', { name: 'X' }, /no campaign "missing"/, 404);
    await bad('PUT', '/v1/messages/campaign/big', { status: 'paused' }, /^status /);
    await bad(
      'PUT',
      '/v1/audiences/a1',
      { type: 'segment', name: 'A', active: true, filters: [{ type: 'received_message_from_campaign', messageId: 'big', extra: 1 }] },
      /unknown body property "extra" in filters\[0\]/,
    );
  });

  it('of two creations of one message at the same time, one is created and the other gets a 409 without touching the actor', async () => {
    const [a, b] = await Promise.all([
      call<{ message: { name: string } }>(api, 'POST', '/v1/messages', { kind: 'campaign', id: 'raced', name: 'First', tags: ['a'] }),
      call<{ message: { name: string } }>(api, 'POST', '/v1/messages', {
        kind: 'campaign',
        id: 'raced',
        name: 'Second',
        tags: ['b'],
        status: 'stopped',
      }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [201, 409], `${a.text} / ${b.text}`);
    const winner = a.status === 201 ? a : b;
    const stored = await stack
      .db('messages')
      .where({ kind: 'campaign', id: 'raced' })
      .select<{ name: string; status: string }[]>('name', 'status');
    assert.equal(stored.length, 1);
    assert.equal(stored[0].name, winner.body.message.name);
    assert.equal(stored[0].status, winner === a ? 'active' : 'stopped');
    // Only the winner reached the actor: its details, and a stop only if the winner was stopped.
    const events =
      (await stack.client.workflow.getHandle(lifecycleWorkflowId({ kind: 'campaign', id: 'raced' })).fetchHistory()).events ?? [];
    const signals = events
      .filter((e) => e.workflowExecutionSignaledEventAttributes)
      .map((e) => e.workflowExecutionSignaledEventAttributes?.signalName);
    const updates = events
      .filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)
      .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name);
    assert.deepEqual(signals, ['messageDetails']);
    assert.deepEqual(updates, winner === a ? [] : ['stop']);
  });

  it('documents the data plane routes in the OpenAPI document', async () => {
    const res = await call<{ paths: Record<string, unknown> }>(api, 'GET', '/openapi.json');
    assert.equal(res.status, 200);
    for (const p of [
      '/v1/interactions',
      '/v1/messages/{kind}/{id}/user-data.csv',
      '/v1/messages/{kind}/{id}/analytics',
      '/v1/retargeting/evaluate',
      '/v1/audiences/{id}',
      '/v1/users/export',
      '/v1/users/{id}',
    ]) {
      assert.ok(p in res.body.paths, `${p} in /openapi.json`);
    }
  });
});
