/**
 * Rule 9 (every refusal, in the words users know), rule 10 (legacy purged messages cannot be used in
 * filters) and rule 3 through the API: an audience saved with a filter on a stopped message keeps it
 * retained; removing the filter lets it expire.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiServer } from '../../src/api/app';
import { markLegacyPurged } from '../../src/dataplane/messages';
import { createStack, waitForState, type TestStack } from '../support/stack';
import { call, dataPlaneApi } from './helpers';

const EXPIRED = { kind: 'campaign', id: 'old-promo' } as const;
const EXPIRED_CANVAS = { kind: 'canvas', id: 'old-journey' } as const;

describe('guards and references', () => {
  let stack: TestStack;
  let api: ApiServer;

  const put = (id: string, body: Record<string, unknown>) =>
    call<{ error: string; message: string; expiredFilters?: unknown[] }>(api, 'PUT', `/v1/audiences/${id}`, body);
  const onExpired = [{ type: 'received_message_from_campaign', messageId: EXPIRED.id }];

  before(async () => {
    // The retention test saves its audience after a restore, before the restored data's fresh deadline.
    stack = await createStack({ ttl: '5 seconds', cleanupInterval: '1 hour' });
    await stack.startWorker();
    api = await dataPlaneApi(stack);
    await api.ready();
    for (const body of [
      { ...EXPIRED, name: 'Old promo', status: 'stopped' },
      { ...EXPIRED_CANVAS, name: 'Old journey', status: 'stopped', steps: [{ id: 's1', name: 'S1' }] },
      { kind: 'canvas', id: 'welcome', name: 'Welcome series' },
      { kind: 'canvas', id: 'winback', name: 'Win-back' },
      { kind: 'campaign', id: 'flash', name: 'Flash sale' },
      { kind: 'campaign', id: 'legacy', name: 'Legacy 2021' },
      { kind: 'campaign', id: 'kept', name: 'Kept by reference', status: 'stopped' },
    ]) {
      const res = await call(api, 'POST', '/v1/messages', body);
      assert.equal(res.status, 201, res.text);
    }
    // The messages the tests resume must stay available while stopped: an active segment retains them.
    const keeper = await put('keeper', {
      type: 'segment',
      name: 'Keeper',
      active: true,
      filters: [
        { type: 'in_canvas_control_group', messageId: 'welcome' },
        { type: 'in_canvas_control_group', messageId: 'winback' },
        { type: 'in_campaign_control_group', messageId: 'flash' },
      ],
    });
    assert.equal(keeper.status, 200, JSON.stringify(keeper.body));
    for (const [kind, id] of [
      ['canvas', 'welcome'],
      ['canvas', 'winback'],
      ['campaign', 'flash'],
    ] as const) {
      assert.equal((await call(api, 'PUT', `/v1/messages/${kind}/${id}`, { status: 'stopped' })).status, 200);
    }
    await waitForState(stack, EXPIRED, 'expired', 30_000);
    await waitForState(stack, EXPIRED_CANVAS, 'expired', 30_000);
  });
  after(async () => {
    await api?.close();
    await stack?.close();
  });

  it('refuses to resume one Canvas whose filters use expired data, naming it', async () => {
    assert.equal(
      (await put('welcome-audience', { type: 'canvas', name: 'Welcome audience', active: false, messageId: 'welcome', filters: onExpired }))
        .status,
      200,
    );
    const res = await call<{ error: string; message: string }>(api, 'PUT', '/v1/messages/canvas/welcome', { status: 'active' });
    assert.equal(res.status, 409, res.text);
    assert.equal(
      res.body.message,
      "Can't resume Welcome series because it is using filters or segments that have expired data. Remove these and try again.",
    );
    // The same words when the Canvas's audience itself is activated.
    const direct = await call<{ message: string }>(api, 'POST', '/v1/audiences/activate', { ids: ['welcome-audience'] });
    assert.equal(direct.status, 409);
    assert.equal(
      direct.body.message,
      "Can't resume Welcome series because it is using filters or segments that have expired data. Remove these and try again.",
    );
  });

  it('refuses through a segment too, and refuses several Canvases with the plural words', async () => {
    assert.equal(
      (
        await put('old-buyers', {
          type: 'segment',
          name: 'Old buyers',
          active: false,
          filters: [{ type: 'clicked_opened_step', messageId: EXPIRED_CANVAS.id, stepId: 's1' }],
        })
      ).status,
      200,
    );
    assert.equal(
      (
        await put('winback-audience', {
          type: 'canvas',
          name: 'Win-back audience',
          active: false,
          messageId: 'winback',
          filters: [],
          segmentIds: ['old-buyers'],
        })
      ).status,
      200,
    );
    const single = await call<{ message: string; expiredFilters: { segmentId?: string }[] }>(api, 'PUT', '/v1/messages/canvas/winback', {
      status: 'active',
    });
    assert.equal(single.status, 409);
    assert.equal(
      single.body.message,
      "Can't resume Win-back because it is using filters or segments that have expired data. Remove these and try again.",
    );
    assert.equal(single.body.expiredFilters[0].segmentId, 'old-buyers');
    const several = await call<{ message: string }>(api, 'POST', '/v1/messages/resume', { kind: 'canvas', ids: ['welcome', 'winback'] });
    assert.equal(several.status, 409);
    assert.equal(
      several.body.message,
      "Can't resume Canvases because at least one Canvas is using filters or segments that have expired data. Remove these and try again.",
    );
    const audiences = await call<{ message: string }>(api, 'POST', '/v1/audiences/activate', {
      ids: ['welcome-audience', 'winback-audience'],
    });
    assert.equal(
      audiences.body.message,
      "Can't resume Canvases because at least one Canvas is using filters or segments that have expired data. Remove these and try again.",
    );
    // Nothing changed: both still stopped.
    for (const id of ['welcome', 'winback']) {
      const m = await stack.db('messages').where({ kind: 'canvas', id }).first<{ status: string }>();
      assert.equal(m?.status, 'stopped');
    }
  });

  it('refuses campaigns and Content Cards with their own words', async () => {
    assert.equal(
      (await put('flash-audience', { type: 'campaign', name: 'Flash audience', active: false, messageId: 'flash', filters: onExpired }))
        .status,
      200,
    );
    const one = await call<{ message: string }>(api, 'PUT', '/v1/messages/campaign/flash', { status: 'active' });
    assert.equal(one.status, 409);
    assert.equal(one.body.message, "You can't resume these Campaigns. One or more Campaigns include expired filters.");
    const bulk = await call<{ message: string }>(api, 'POST', '/v1/messages/resume', { kind: 'campaign', ids: ['flash'] });
    assert.equal(bulk.body.message, "You can't resume these Campaigns. One or more Campaigns include expired filters.");
    // The actor's own resume route applies the same rule to a message defined here, and signals nothing.
    const signalled = await call<{ message: string }>(api, 'POST', '/v1/messages/campaign/flash/resume', {});
    assert.equal(signalled.status, 409, signalled.text);
    assert.equal(signalled.body.message, "You can't resume these Campaigns. One or more Campaigns include expired filters.");
    assert.notEqual((await stack.lifecycle.status('campaign', 'flash'))?.state, 'active');
    const activate = await put('flash-audience', {
      type: 'campaign',
      name: 'Flash audience',
      active: true,
      messageId: 'flash',
      filters: onExpired,
    });
    assert.equal(activate.status, 409);
    assert.equal(activate.body.message, "You can't resume these Campaigns. One or more Campaigns include expired filters.");

    const card = await put('card-1', {
      type: 'content_card',
      name: 'Card',
      active: true,
      filters: [{ type: 'in_canvas_control_group', messageId: EXPIRED_CANVAS.id }],
    });
    assert.equal(card.status, 409);
    assert.equal(card.body.message, "You can't unarchive these Cards. One or more Cards include expired filters.");
    assert.equal(
      (
        await put('card-1', {
          type: 'content_card',
          name: 'Card',
          active: false,
          filters: [{ type: 'in_canvas_control_group', messageId: EXPIRED_CANVAS.id }],
        })
      ).status,
      200,
    );
    assert.equal((await put('card-2', { type: 'content_card', name: 'Card 2', active: false, filters: [] })).status, 200);
    const cards = await call<{ message: string }>(api, 'POST', '/v1/audiences/activate', { ids: ['card-1', 'card-2'] });
    assert.equal(cards.status, 409);
    assert.equal(cards.body.message, "You can't unarchive these Cards. One or more Cards include expired filters.");
    assert.equal((await stack.db('audiences').where({ id: 'card-2' }).first<{ active: number }>())?.active, 0, 'all or none');
  });

  it('refuses to resume a message whose own data expired', async () => {
    const res = await call<{ error: string; message: string }>(api, 'PUT', '/v1/messages/canvas/old-journey', { status: 'active' });
    assert.equal(res.status, 409);
    assert.equal(res.body.message, 'Resume is only available for stopped Canvases with available interaction data');
  });

  it('tag filters and summary filters on expired messages do not block, and removing the filter lets the resume through', async () => {
    assert.equal(
      (
        await put('tagged', {
          type: 'content_card',
          name: 'Tagged',
          active: true,
          filters: [
            { type: 'received_message_with_tag', tag: 'anything' },
            { type: 'has_never_received_message_from_campaign_or_canvas_step', messageKind: 'campaign', messageId: EXPIRED.id },
          ],
        })
      ).status,
      200,
    );
    assert.equal(
      (await put('flash-audience', { type: 'campaign', name: 'Flash audience', active: false, messageId: 'flash', filters: [] })).status,
      200,
    );
    const res = await call<{ message: { status: string } }>(api, 'PUT', '/v1/messages/campaign/flash', { status: 'active' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.message.status, 'active');
    assert.equal(
      (await stack.db('audiences').where({ id: 'flash-audience' }).first<{ active: number }>())?.active,
      1,
      "the campaign's audience follows it",
    );
    await waitForState(stack, { kind: 'campaign', id: 'flash' }, 'active', 10_000);
  });

  it("the actor's resume route resumes a message defined here once its filters are clean, and its definition follows", async () => {
    assert.equal((await call(api, 'PUT', '/v1/messages/canvas/welcome', { status: 'stopped' })).status, 200);
    assert.equal(
      (await call(api, 'POST', '/v1/messages/canvas/welcome/resume', {})).status,
      409,
      'welcome-audience still filters on expired data',
    );
    assert.equal(
      (await put('welcome-audience', { type: 'canvas', name: 'Welcome audience', active: false, messageId: 'welcome', filters: [] }))
        .status,
      200,
    );
    const res = await call<{ changed: boolean; state: string }>(api, 'POST', '/v1/messages/canvas/welcome/resume', {});
    // The actor's own answer: it is active once the call returns.
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.changed, true, res.text);
    assert.equal(res.body.state, 'active', res.text);
    assert.equal((await stack.lifecycle.status('canvas', 'welcome'))?.state, 'active');
    assert.equal((await stack.db('messages').where({ kind: 'canvas', id: 'welcome' }).first<{ status: string }>())?.status, 'active');
  });

  it('refuses filters on legacy purged messages, in audiences and in evaluation', async () => {
    await markLegacyPurged(stack.db, { kind: 'campaign', id: 'legacy' }, '2024-01-01T00:00:00Z', 'no sends for 25 months');
    const res = await put('legacy-users', {
      type: 'segment',
      name: 'Legacy users',
      active: false,
      filters: [{ type: 'received_message_from_campaign', messageId: 'legacy' }],
    });
    assert.equal(res.status, 409);
    assert.equal(res.body.error, 'legacy_purged');
    assert.equal(
      res.body.message,
      'filters[0]: campaign "legacy" cannot be used in retargeting filters: its interaction data was deleted under the former retention policy',
    );
    const evaluated = await call<{ error: string }>(api, 'POST', '/v1/retargeting/evaluate', {
      filter: { type: 'converted_from_campaign', messageId: 'legacy' },
    });
    assert.equal(evaluated.status, 409);
    assert.equal(evaluated.body.error, 'legacy_purged');
    assert.equal((await stack.db('audiences').where({ id: 'legacy-users' }).first()) ?? null, null, 'nothing saved');
    const unknown = await put('ghost', {
      type: 'segment',
      name: 'Ghost',
      active: true,
      filters: [{ type: 'received_message_from_campaign', messageId: 'never-defined' }],
    });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.message, /filters\[0\]: unknown campaign "never-defined"/);
    const malformed = await put('bad', {
      type: 'segment',
      name: 'Bad',
      active: true,
      filters: [{ type: 'received_campaign_variant', messageId: 'kept' }],
    });
    assert.equal(malformed.status, 400);
    assert.match(malformed.body.message, /filters\[0\]: variantId is required for received_campaign_variant/);
  });

  it('keeps a stopped message retained while an active audience filters on it, and lets it expire once the filter is removed', async () => {
    const ref = { kind: 'campaign', id: 'kept' } as const;
    await waitForState(stack, ref, 'expired', 30_000).catch(() => undefined);
    // "kept" was stopped with the others and has expired; restore it, then reference it.
    await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'ops@example.com' });
    await waitForState(stack, ref, 'stopped', 30_000);
    const saved = await put('kept-retargeting', {
      type: 'segment',
      name: 'Kept retargeting',
      active: true,
      filters: [{ type: 'received_message_from_campaign', messageId: 'kept' }],
    });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    assert.deepEqual((saved.body as unknown as { references: { signalled: unknown[] } }).references.signalled, [ref]);
    const retained = await waitForState(stack, ref, 'retained', 30_000);
    assert.equal(retained.activeReferences, 1);
    const removed = await put('kept-retargeting', { type: 'segment', name: 'Kept retargeting', active: true, filters: [] });
    assert.deepEqual((removed.body as unknown as { references: { signalled: unknown[] } }).references.signalled, [ref]);
    await waitForState(stack, ref, 'expired', 30_000);
  });
});
