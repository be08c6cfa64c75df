/** The forecast and the storage report (issue 30), read from MySQL as the actors and the archive left it. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { forecast } from '../src/reports/forecast';
import { storageReport } from '../src/reports/storageReport';
import { windowEnd } from '../src/reports/window';
import type { LifecycleState, MessageKind } from '../src/shared/types';
import { InvalidInputError } from '../src/shared/validation';
import type { Scope } from '../src/auth/scopes';
import { stackApi } from './support/api';
import { bearer, testAuth } from './support/auth';
import { runCliCaptured } from './support/cli';
import { createStack, seedInteractions, type TestStack } from './support/stack';

const DAY = 86_400_000;

describe('forecast and storage report', () => {
  let stack: TestStack;
  const now = new Date();
  const inDays = (d: number) => new Date(now.getTime() + d * DAY);

  async function message(
    kind: MessageKind,
    id: string,
    state: LifecycleState,
    opts: { expiresInDays?: number; rows?: number; tags?: string[] } = {},
  ) {
    await stack.db('messages').insert({ kind, id, name: `Message ${id}` });
    if (opts.tags?.length) await stack.db('message_tags').insert(opts.tags.map((tag) => ({ kind, message_id: id, tag })));
    await stack.db('message_availability').insert({
      kind,
      message_id: id,
      state,
      available: state === 'active' || state === 'stopped' || state === 'retained',
      stopped_at: state === 'active' ? null : now,
      expires_at: opts.expiresInDays === undefined ? null : inDays(opts.expiresInDays),
      generation: state === 'expired' ? 1 : 0,
      revision: 1,
    });
    if (opts.rows) await seedInteractions(stack.db, { kind, id }, opts.rows);
  }

  async function audience(id: string, name: string, target: { kind: MessageKind; id: string }) {
    await stack.db('audiences').insert({ id, type: 'segment', name, active: true });
    await stack
      .db('audience_filters')
      .insert({ audience_id: id, filter_type: 'clicked_opened_campaign', target_kind: target.kind, target_id: target.id });
  }

  before(async () => {
    stack = await createStack();
    await message('campaign', 'fc-soon', 'stopped', { expiresInDays: 10, rows: 100, tags: ['spring'] });
    await message('canvas', 'fc-kept', 'stopped', { expiresInDays: 5, rows: 50 });
    await audience('aud-winback', 'Winback', { kind: 'canvas', id: 'fc-kept' });
    await message('campaign', 'fc-later', 'stopped', { expiresInDays: 60, rows: 10 });
    await message('campaign', 'fc-retained', 'retained', { expiresInDays: 3, rows: 5 });
    await audience('aud-openers', 'Openers', { kind: 'campaign', id: 'fc-retained' });
    await message('campaign', 'fc-expired', 'expired', { tags: ['spring'] });
    await stack.db('archive_manifests').insert({
      message_kind: 'campaign',
      message_id: 'fc-expired',
      generation: 1,
      status: 'archived',
      row_count: 1_000,
      chunk_count: 2,
      compressed_bytes: 5_000,
      archived_at: new Date(Date.UTC(2026, 10, 15)),
      store: 'mysql',
    });
    await message('campaign', 'fc-active', 'active', { rows: 20 });
  });
  after(async () => stack?.close());

  it('lists what expires within the window, earliest first, with hot rows and bytes and what keeps it', async () => {
    const f = await forecast(stack.db, { until: windowEnd('30d', now), now, limit: 100 });
    assert.deepEqual(
      f.expiring.map((e) => [e.id, e.hotRows, e.activeReferences]),
      [
        ['fc-kept', 50, 1],
        ['fc-soon', 100, 0],
      ],
    );
    assert.ok(
      f.expiring.every((e) => e.hotBytes > 0),
      'bytes are counted',
    );
    assert.deepEqual(f.expiring[0].audiences, [{ id: 'aud-winback', type: 'segment', name: 'Winback' }]);
    assert.deepEqual(
      f.retained.map((r) => [r.id, r.audiences.map((a) => a.name)]),
      [['fc-retained', ['Openers']]],
    );
    assert.equal(f.totals.expiring, 2);
    assert.equal(f.totals.keptByAudiences, 1);
    assert.equal(f.totals.expiringRows, 100, 'only what no audience keeps moves');
    assert.equal(f.truncated, false);

    const canvases = await forecast(stack.db, { until: windowEnd('30d', now), now, limit: 100, kind: 'canvas' });
    assert.deepEqual(
      canvases.expiring.map((e) => e.id),
      ['fc-kept'],
    );
    const spring = await forecast(stack.db, { until: windowEnd('3 months', now), now, limit: 100, tag: 'spring' });
    assert.deepEqual(
      spring.expiring.map((e) => e.id),
      ['fc-soon'],
    );
    const one = await forecast(stack.db, { until: windowEnd('90d', now), now, limit: 1 });
    assert.equal(one.truncated, true);
    assert.deepEqual(
      one.expiring.map((e) => e.id),
      ['fc-kept'],
    );
  });

  it('refuses a window that is not one, and the CLI says so without reading anything', async () => {
    assert.throws(() => windowEnd('soon'), InvalidInputError);
    assert.throws(() => windowEnd('0d'), InvalidInputError);
    assert.throws(() => windowEnd('10 years'), InvalidInputError);
    const run = await runCliCaptured(['forecast', '--within', 'soon'], { ...process.env, ...stack.env });
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /--within/);
  });

  it('reports messages by state, and hot and archived rows and bytes by kind, tag and month of expiry', async () => {
    const r = await storageReport(stack.db, now);
    assert.equal(r.byState.stopped, 3);
    assert.equal(r.byState.retained, 1);
    assert.equal(r.byState.expired, 1);
    assert.equal(r.byState.active, 1);
    assert.equal(r.total.messages, 6);
    assert.equal(r.total.hotRows, 185);
    assert.equal(r.total.archivedRows, 1_000);
    assert.equal(r.total.archivedBytes, 5_000);
    assert.ok(r.total.hotBytes > 0);
    const spring = r.byTag.find((t) => t.tag === 'spring');
    assert.deepEqual(
      { messages: spring?.messages, hotRows: spring?.hotRows, archivedRows: spring?.archivedRows },
      { messages: 2, hotRows: 100, archivedRows: 1_000 },
    );
    const canvas = r.byKind.find((k) => k.kind === 'canvas');
    assert.equal(canvas?.hotRows, 50);
    const months = new Map(r.byExpiryMonth.map((m) => [m.month, m]));
    assert.equal(months.get('2026-11')?.archivedRows, 1_000, 'an expired message counts in the month it was archived');
    assert.equal(months.get('none')?.hotRows, 20, 'an active message has no expiry');
    assert.equal(months.get(inDays(60).toISOString().slice(0, 7))?.messages !== undefined, true);

    const run = await runCliCaptured(['report'], { ...process.env, ...stack.env });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /messages by state: active 1, stopped 3, retained 1, archiving 0, expired 1, restoring 0/);
    assert.match(run.stdout, /spring\s+2\s+100\s/);
    const fc = await runCliCaptured(['forecast', '--within', '30d'], { ...process.env, ...stack.env });
    assert.equal(fc.code, 0, fc.stderr);
    assert.match(fc.stdout, /canvas:fc-kept .*kept .*segment Winback/);
    assert.match(fc.stdout, /campaign:fc-soon .*moves/);
  });

  it('answers GET /v1/forecast and GET /v1/storage for the messages and restore scopes, and refuses a bad window', async () => {
    const auth = await testAuth(stack.db);
    const app = await stackApi(stack, auth);
    try {
      const get = async (url: string, scopes: Scope[]) => {
        const res = await app.inject({ method: 'GET', url, headers: bearer(await auth.token(scopes)) });
        return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
      };
      const f = await get('/v1/forecast?within=30d&kind=canvas', ['restore']);
      assert.equal(f.status, 200, JSON.stringify(f.body));
      assert.deepEqual(
        (f.body.expiring as { id: string }[]).map((e) => e.id),
        ['fc-kept'],
      );
      const bad = await get('/v1/forecast?within=soon', ['messages']);
      assert.equal(bad.status, 400);
      assert.match(String(bad.body.message), /within/);
      assert.equal((await get('/v1/storage', ['ingest'])).status, 403);
      const r = await get('/v1/storage', ['messages']);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((r.body.total as { archivedRows: number }).archivedRows, 1_000);
    } finally {
      await app.close();
    }
  });
});
