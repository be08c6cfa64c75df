/**
 * Bulk restores on real Temporal and real MySQL, e-mail through a local Resend stand-in: by tag (campaigns,
 * Canvases, both), by ids (a mix of expired, available, unknown and broken), a tag with nothing expired,
 * the same request twice, exactly one summary e-mail, and restored messages expiring again.
 *
 * Messages are expired quickly by stopping them with a stoppedAt one TTL in the past: their deadline has
 * passed on arrival. A restored message gets a fresh deadline (now + TTL), so it stays available long
 * enough to be checked, then expires again.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { BulkRequestConflictError, BulkRestoreClient } from '../src/client/bulkRestoreClient';
import { BULK_RESTORE_WORKFLOW_ID_PREFIX, type BulkRestoreProgress } from '../src/bulk/types';
import type { MessageRef } from '../src/shared/types';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import { canonicalBytes, sha256 } from '../src/storage/chunkCodec';
import {
  archivedRowCount,
  createStack,
  hotRows,
  seedInteractions,
  waitFor,
  waitForPollers,
  waitForState,
  waitUntilSettled,
  withTimeout,
  type TestStack,
} from './support/stack';
import { startFakeResend, type FakeResend } from './support/fakeResend';

// Long enough for a whole bulk restore and its checks to finish before the first restored message expires again.
const TTL_SECONDS = 40;

describe('bulk restore', () => {
  let resend: FakeResend;
  let stack: TestStack;
  let bulk: BulkRestoreClient;

  before(async () => {
    resend = await startFakeResend();
    stack = await createStack({
      ttl: `${TTL_SECONDS} seconds`,
      cleanupInterval: '1 hour',
      chunkRows: 300,
      env: { RESEND_API_KEY: 're_bulk_key', RESEND_BASE_URL: resend.baseUrl, EMAIL_FROM: 'Data <data@example.com>' },
    });
    await stack.startWorker();
    bulk = new BulkRestoreClient(stack.client);
  });
  after(async () => {
    await stack?.close();
    await resend?.close();
  });

  /** Messages with rows, a name and tags, stopped one TTL ago: they archive at once. */
  async function expiredMessages(refs: MessageRef[], opts: { rows?: number; tags?: string[] } = {}): Promise<void> {
    await seedMessages(refs, opts);
    const stoppedAt = new Date(Date.now() - (TTL_SECONDS + 5) * 1000).toISOString();
    await Promise.all(refs.map((r) => stack.lifecycle.stop(r.kind, r.id, { stoppedAt })));
    await Promise.all(refs.map((r) => waitForState(stack, r, 'expired', 60_000)));
  }

  async function seedMessages(refs: MessageRef[], opts: { rows?: number; tags?: string[] } = {}): Promise<void> {
    for (const r of refs) {
      await stack.db('messages').insert({ kind: r.kind, id: r.id, name: `Name of ${r.id}` });
      if (opts.tags?.length) await stack.db('message_tags').insert(opts.tags.map((tag) => ({ kind: r.kind, message_id: r.id, tag })));
      await seedInteractions(stack.db, r, opts.rows ?? 50);
    }
  }

  function emailsTo(address: string) {
    return resend.received.filter((e) => e.body.to.includes(address));
  }

  async function finished(requestId: string): Promise<BulkRestoreProgress> {
    return withTimeout(bulk.result(requestId), 120_000, `bulk restore ${requestId} to finish`);
  }

  async function itemOutcomes(requestId: string): Promise<Record<string, string>> {
    const rows = await stack.db('bulk_restore_items').where('execution_key', 'like', `${requestId}/%`).select<
      {
        kind: string;
        message_id: string;
        outcome: string;
      }[]
    >('kind', 'message_id', 'outcome');
    return Object.fromEntries(rows.map((r) => [`${r.kind}:${r.message_id}`, r.outcome]));
  }

  it('by tag, campaigns only: expired campaigns restored, available ones reported, Canvases untouched', async () => {
    const campaigns: MessageRef[] = [
      { kind: 'campaign', id: 'spring-1' },
      { kind: 'campaign', id: 'spring-2' },
    ];
    const canvas: MessageRef = { kind: 'canvas', id: 'spring-flow' };
    const active: MessageRef = { kind: 'campaign', id: 'spring-live' };
    await expiredMessages([...campaigns, canvas], { rows: 120, tags: ['spring'] });
    await seedMessages([active], { tags: ['spring'] });
    await expiredMessages([{ kind: 'campaign', id: 'other-tag' }], { tags: ['autumn'] });

    const started = await bulk.start({ tag: 'spring', kind: 'campaign', requestedBy: 'campaigns@example.com' });
    assert.equal(started.attached, false);
    assert.match(started.requestId, /^br-[0-9a-f]{20}$/);
    assert.equal(started.workflowId, `interaction-data-bulk-restore:${started.requestId}`);
    const result = await finished(started.requestId);

    assert.equal(result.phase, 'completed');
    assert.equal(result.total, 3);
    assert.equal(result.restored, 2);
    assert.equal(result.alreadyAvailable, 1);
    assert.equal(result.failed, 0);
    assert.equal(result.done, 3);
    assert.equal(result.rowsRestored, 240);
    assert.ok(result.summarySentAt);
    for (const ref of campaigns) {
      const s = await stack.lifecycle.status(ref.kind, ref.id);
      assert.equal(s?.available, true, `${ref.id} available again`);
      assert.equal(s?.lastRestore?.rowCount, 120);
      assert.ok(s?.lastRestore?.requestId.startsWith(`bulk/${started.requestId}/`), 'restored under the bulk request id');
      assert.equal((await hotRows(stack.db, ref)).length, 120);
    }
    assert.equal(
      (await stack.lifecycle.status(canvas.kind, canvas.id))?.state,
      'expired',
      'a Canvas with the tag is not part of a campaigns-only restore',
    );
    assert.equal((await stack.lifecycle.status('campaign', 'other-tag'))?.state, 'expired');
    await assert.rejects(
      stack.client.workflow.getHandle(lifecycleWorkflowId(active)).describe(),
      WorkflowNotFoundError,
      'an available message is reported, not touched',
    );
    assert.deepEqual(await itemOutcomes(started.requestId), {
      'campaign:spring-1': 'restored',
      'campaign:spring-2': 'restored',
      'campaign:spring-live': 'already_available',
    });
  });

  it('by tag, Canvases only', async () => {
    const canvases: MessageRef[] = [
      { kind: 'canvas', id: 'onboarding-a' },
      { kind: 'canvas', id: 'onboarding-b' },
    ];
    const campaign: MessageRef = { kind: 'campaign', id: 'onboarding-mail' };
    await expiredMessages([...canvases, campaign], { rows: 40, tags: ['onboarding'] });

    const started = await bulk.start({ tag: 'onboarding', kind: 'canvas', requestedBy: 'canvases@example.com' });
    const result = await finished(started.requestId);
    assert.deepEqual(
      { total: result.total, restored: result.restored, failed: result.failed, rows: result.rowsRestored },
      { total: 2, restored: 2, failed: 0, rows: 80 },
    );
    for (const ref of canvases) assert.equal((await stack.lifecycle.status(ref.kind, ref.id))?.available, true);
    assert.equal((await stack.lifecycle.status(campaign.kind, campaign.id))?.state, 'expired');
  });

  it('by tag, both kinds, across continue-as-new: one summary e-mail, rows back byte for byte, each expires again', async () => {
    const refs: MessageRef[] = [];
    for (let i = 0; i < 8; i++) refs.push({ kind: 'campaign', id: `summer-c${i}` });
    for (let i = 0; i < 6; i++) refs.push({ kind: 'canvas', id: `summer-v${i}` });
    // Hot rows before expiry, to compare after the restore.
    const checksums = new Map<string, string>();
    await seedMessages(refs, { rows: 90, tags: ['summer', 'promo'] });
    for (const r of refs) checksums.set(r.id, sha256(canonicalBytes(await hotRows(stack.db, r))));
    const stoppedAt = new Date(Date.now() - (TTL_SECONDS + 5) * 1000).toISOString();
    await Promise.all(refs.map((r) => stack.lifecycle.stop(r.kind, r.id, { stoppedAt })));
    await Promise.all(refs.map((r) => waitForState(stack, r, 'expired', 60_000)));

    const started = await bulk.start({ tag: 'Summer', requestedBy: 'Ops@Example.com', tuning: { concurrency: 3 } });
    // Progress is queryable while it runs.
    const seen = await waitFor('progress with a total', async () => {
      const p = await bulk.progress(started.requestId).catch(() => null);
      return p && p.total > 0 ? p : null;
    });
    assert.equal(seen.total, 14);
    assert.deepEqual(seen.selection, { by: 'tag', tag: 'Summer', kinds: ['campaign', 'canvas'] });
    const result = await finished(started.requestId);
    assert.equal(result.restored, 14);
    assert.equal(result.rowsRestored, 14 * 90);
    assert.ok(result.runs > 1, `crossed continue-as-new (runs: ${result.runs})`);
    assert.equal(result.concurrency, 3);
    for (const r of refs) {
      assert.equal(sha256(canonicalBytes(await hotRows(stack.db, r))), checksums.get(r.id), `${r.id}: same rows, byte for byte`);
      assert.equal(await archivedRowCount(stack.db, r), 0);
    }

    await waitFor('the summary e-mail', () => Promise.resolve(emailsTo('Ops@Example.com').length > 0), 30_000);
    const mails = emailsTo('Ops@Example.com');
    assert.equal(mails.length, 1, 'one summary e-mail, none per message');
    assert.match(mails[0].body.subject, /^Bulk restore complete: 14 restored \(expired campaigns and Canvases tagged "Summer"\)$/);
    const text = mails[0].body.text ?? '';
    assert.match(text, /Restored: +14 messages, 1,260 interaction records/);
    for (const r of refs) assert.match(text, new RegExp(`${r.kind} ${r.id} "Name of ${r.id}": 90 records`));
    assert.ok(mails[0].idempotencyKey?.startsWith(`interaction-data-bulk-restore/${started.requestId}/`));
    assert.equal((await stack.db('email_outbox').where({ to_address: 'Ops@Example.com' })).length, 1);

    // Each restored message gets another TTL of inactivity, then expires again, into a new generation.
    const again = await waitForState(stack, refs[0], 'expired', (TTL_SECONDS + 30) * 1000);
    assert.equal(again.archive?.generation, 2);
    assert.equal(again.archive?.rowCount, 90);
    assert.equal((await hotRows(stack.db, refs[0])).length, 0);
  });

  it('a tag with no expired messages: nothing restored, the summary says so', async () => {
    await seedMessages([{ kind: 'campaign', id: 'winter-live' }], { tags: ['winter'] });
    const started = await bulk.start({ tag: 'winter', requestedBy: 'winter@example.com' });
    const result = await finished(started.requestId);
    assert.deepEqual(
      { total: result.total, restored: result.restored, alreadyAvailable: result.alreadyAvailable, failed: result.failed },
      { total: 1, restored: 0, alreadyAvailable: 1, failed: 0 },
    );

    const none = await finished((await bulk.start({ tag: 'no-such-tag', requestedBy: 'winter@example.com' })).requestId);
    assert.equal(none.total, 0);
    assert.equal(none.phase, 'completed');

    await waitFor('both summaries', () => Promise.resolve(emailsTo('winter@example.com').length === 2), 30_000);
    const subjects = emailsTo('winter@example.com')
      .map((m) => m.body.subject)
      .sort();
    assert.deepEqual(subjects, [
      'Bulk restore complete: 0 restored, 1 already available (expired campaigns and Canvases tagged "winter")',
      'Bulk restore complete: nothing matched (expired campaigns and Canvases tagged "no-such-tag")',
    ]);
  });

  it('by ids: expired restored, available reported, unknown and broken ones failed with the reason', async () => {
    const expired: MessageRef = { kind: 'campaign', id: 'pick-expired' };
    const expiredCanvas: MessageRef = { kind: 'canvas', id: 'pick-expired' };
    const broken: MessageRef = { kind: 'campaign', id: 'pick-broken' };
    const neverStopped: MessageRef = { kind: 'canvas', id: 'pick-live' };
    const stopped: MessageRef = { kind: 'campaign', id: 'pick-stopped' };
    const unknown: MessageRef = { kind: 'campaign', id: 'pick-nobody' };
    await expiredMessages([expired, expiredCanvas, broken], { rows: 60 });
    await seedMessages([neverStopped, stopped]);
    await stack.lifecycle.stop(stopped.kind, stopped.id);
    await waitForState(stack, stopped, 'stopped');
    // Chunks whose checksums no longer match: the actor's restore fails verification, for good.
    await stack
      .db('archive_chunks')
      .where({ message_kind: broken.kind, message_id: broken.id })
      .update({ checksum: '0'.repeat(64) });

    const started = await bulk.start({
      refs: [expired, expiredCanvas, broken, neverStopped, stopped, unknown, expired],
      requestedBy: 'picker@example.com',
    });
    const result = await finished(started.requestId);
    assert.deepEqual(result.selection, { by: 'ids', count: 6 }, 'duplicates dropped');
    assert.deepEqual(
      {
        total: result.total,
        restored: result.restored,
        alreadyAvailable: result.alreadyAvailable,
        failed: result.failed,
        rows: result.rowsRestored,
      },
      { total: 6, restored: 2, alreadyAvailable: 2, failed: 2, rows: 120 },
    );
    const reasons = Object.fromEntries(result.failures.map((f) => [`${f.kind}:${f.id}`, f.reason]));
    assert.match(reasons['campaign:pick-nobody'], /^unknown message/);
    assert.match(reasons['campaign:pick-broken'], /^its restore cannot proceed: ChunkIntegrityError: .*does not match its manifest/);
    assert.deepEqual(await itemOutcomes(started.requestId), {
      'campaign:pick-broken': 'failed',
      'campaign:pick-expired': 'restored',
      'campaign:pick-nobody': 'failed',
      'campaign:pick-stopped': 'already_available',
      'canvas:pick-expired': 'restored',
      'canvas:pick-live': 'already_available',
    });
    await assert.rejects(
      stack.client.workflow.getHandle(lifecycleWorkflowId(unknown)).describe(),
      WorkflowNotFoundError,
      'nothing started for an unknown id',
    );
    await assert.rejects(stack.client.workflow.getHandle(lifecycleWorkflowId(neverStopped)).describe(), WorkflowNotFoundError);
    assert.equal((await stack.lifecycle.status(stopped.kind, stopped.id))?.lastRefusal, null, 'an available message is not signalled');

    await waitFor('the summary e-mail', () => Promise.resolve(emailsTo('picker@example.com').length > 0), 30_000);
    const [mail] = emailsTo('picker@example.com');
    assert.equal(mail.body.subject, 'Bulk restore complete: 2 restored, 2 failed, 2 already available (6 selected messages)');
    assert.match(
      mail.body.text ?? '',
      /Failed \(2\):\n {2}- campaign pick-broken "Name of pick-broken": its restore cannot proceed: ChunkIntegrityError/,
    );
    assert.match(mail.body.text ?? '', /campaign pick-nobody: unknown message/);
    assert.match(mail.body.text ?? '', /Already available, nothing to do \(2\):/);
  });

  it('told by the actors, no watching: one request per message, one restoreDone each, a chunk that fails for good reported', async () => {
    const refs: MessageRef[] = Array.from({ length: 5 }, (_, i) => ({ kind: i % 2 ? 'canvas' : 'campaign', id: `told-${i}` }));
    const broken = refs[2];
    await expiredMessages(refs, { rows: 700, tags: ['told'] });
    // One chunk of one message no longer matches its checksum: that restore cannot proceed, the others do.
    const corrupted = await stack
      .db('archive_chunks')
      .where({ message_kind: broken.kind, message_id: broken.id, seq: 1 })
      .update({ checksum: stack.db.raw("REPEAT('0', 64)") });
    assert.equal(corrupted, 1);

    const started = await bulk.start({ tag: 'told', requestedBy: 'told@example.com', tuning: { concurrency: 2 } });
    const result = await finished(started.requestId);
    assert.deepEqual(
      { total: result.total, restored: result.restored, failed: result.failed, rows: result.rowsRestored },
      { total: 5, restored: 4, failed: 1, rows: 4 * 700 },
    );
    assert.deepEqual(
      result.failures.map((f) => `${f.kind}:${f.id}`),
      [`${broken.kind}:${broken.id}`],
    );
    assert.match(result.failures[0].reason, /^its restore cannot proceed: ChunkIntegrityError: .*does not match its manifest/);
    assert.equal(
      (await stack.lifecycle.status(broken.kind, broken.id))?.problem?.type,
      'ChunkIntegrityError',
      'the actor waits for an operator',
    );
    for (const r of refs.filter((x) => x !== broken)) assert.equal((await hotRows(stack.db, r)).length, 700, `${r.kind}:${r.id} back`);

    // Every run of the bulk workflow, first to last: what it scheduled and what it was told.
    const [{ execution_key: executionKey }] = await stack
      .db('bulk_restore_items')
      .where('execution_key', 'like', `${started.requestId}/%`)
      .limit(1)
      .select<{ execution_key: string }[]>('execution_key');
    let runId: string | undefined = String(executionKey).slice(started.requestId.length + 1);
    const scheduled: string[] = [];
    const signals: string[] = [];
    const markers: string[] = [];
    let runs = 0;
    while (runId) {
      runs += 1;
      const history = await stack.client.workflow.getHandle(started.workflowId, runId).fetchHistory();
      runId = undefined;
      for (const e of history.events ?? []) {
        const activity = e.activityTaskScheduledEventAttributes?.activityType?.name;
        if (activity) scheduled.push(activity);
        const signal = e.workflowExecutionSignaledEventAttributes?.signalName;
        if (signal) signals.push(signal);
        if (e.markerRecordedEventAttributes) markers.push(e.markerRecordedEventAttributes.markerName ?? '');
        runId = e.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? runId;
      }
    }
    assert.equal(runs, result.runs, 'every run seen');
    const count = (list: string[], name: string) => list.filter((x) => x === name).length;
    assert.equal(count(scheduled, 'restoreBulkItem'), 0, 'no watch');
    assert.equal(count(scheduled, 'requestBulkItemRestore'), 5, 'one request per message');
    assert.equal(count(scheduled, 'recordBulkItemResult'), 5);
    assert.equal(count(signals, 'restoreDone'), 5, 'each actor told the bulk workflow once');
    assert.ok(markers.length >= 1, 'the patch marker is recorded');
  });

  it('the same request twice: one workflow, one e-mail; a request id naming another request is refused', async () => {
    const refs: MessageRef[] = [
      { kind: 'campaign', id: 'twice-1' },
      { kind: 'canvas', id: 'twice-2' },
    ];
    await expiredMessages(refs, { rows: 30, tags: ['twice'] });
    const [a, b] = await Promise.all([
      bulk.start({ tag: 'twice', requestedBy: 'twice@example.com' }),
      bulk.start({ tag: 'twice', requestedBy: 'twice@example.com' }),
    ]);
    assert.equal(a.requestId, b.requestId);
    assert.deepEqual([a.attached, b.attached].sort(), [false, true]);
    const result = await finished(a.requestId);
    assert.equal(result.restored, 2);

    const again = await bulk.start({ tag: 'twice', requestedBy: 'TWICE@example.com', refs: undefined });
    assert.equal(again.requestId, a.requestId, 'the same request, written differently');
    assert.equal(again.attached, true);
    assert.equal(again.status, 'COMPLETED');
    const view = await bulk.get(a.requestId);
    assert.equal(view?.status, 'COMPLETED');
    assert.equal(view?.progress?.restored, 2);

    const executions = await stack.db('bulk_restore_items').where('execution_key', 'like', `${a.requestId}/%`).distinct('execution_key');
    assert.equal(executions.length, 1, 'one execution of the request');
    await waitFor('the summary e-mail', () => Promise.resolve(emailsTo('twice@example.com').length > 0), 30_000);
    await waitUntilSettled(stack, `${BULK_RESTORE_WORKFLOW_ID_PREFIX}${a.requestId}`);
    assert.equal(emailsTo('twice@example.com').length, 1, 'one e-mail for the request however often it was sent');

    await bulk.start({ refs, requestedBy: 'named@example.com', requestId: 'ticket-4711' });
    await assert.rejects(
      bulk.start({ tag: 'twice', requestedBy: 'named@example.com', requestId: 'ticket-4711' }),
      BulkRequestConflictError,
    );
    await finished('ticket-4711');
    assert.equal(await bulk.get('no-such-request'), null);
  });

  it('dry run lists what would be restored and changes nothing', async () => {
    const refs: MessageRef[] = [
      { kind: 'campaign', id: 'dry-1' },
      { kind: 'canvas', id: 'dry-2' },
    ];
    await expiredMessages(refs, { tags: ['dry'] });
    await seedMessages([{ kind: 'campaign', id: 'dry-live' }], { tags: ['dry'] });
    const preview = await bulk.preview({ tag: 'dry' });
    assert.deepEqual(
      { total: preview.total, toRestore: preview.toRestore, alreadyAvailable: preview.alreadyAvailable, unknown: preview.unknown },
      { total: 3, toRestore: 2, alreadyAvailable: 1, unknown: 0 },
    );
    assert.deepEqual(
      preview.items.map((i) => `${i.kind}:${i.id} ${i.action}`),
      ['campaign:dry-1 restore', 'campaign:dry-live already_available', 'canvas:dry-2 restore'],
    );
    const byIds = await bulk.preview({ refs: [refs[0], { kind: 'canvas', id: 'dry-nobody' }] });
    assert.deepEqual(
      byIds.items.map((i) => i.action),
      ['restore', 'unknown'],
    );
    for (const r of refs) assert.equal((await stack.lifecycle.status(r.kind, r.id))?.state, 'expired');
  });
});

describe('bulk restore with the worker killed mid-way', () => {
  let stack: TestStack;

  before(async () => {
    // A long TTL: nothing expires again while the test looks at the rows.
    stack = await createStack({ ttl: '10 minutes', cleanupInterval: '1 hour', chunkRows: 500 });
  });
  after(async () => stack?.close());

  function killed(child: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  it('a new worker finishes the request: every message restored once, exact rows, one e-mail', async () => {
    const refs: MessageRef[] = Array.from({ length: 24 }, (_, i) => ({ kind: i % 3 === 0 ? 'canvas' : 'campaign', id: `crash-${i}` }));
    const checksums = new Map<string, string>();
    for (const r of refs) {
      await stack.db('messages').insert({ kind: r.kind, id: r.id, name: r.id });
      await stack.db('message_tags').insert({ kind: r.kind, message_id: r.id, tag: 'crash' });
      await seedInteractions(stack.db, r, 1_500);
      checksums.set(`${r.kind}:${r.id}`, sha256(canonicalBytes(await hotRows(stack.db, r))));
    }
    let worker = stack.spawnWorker();
    await waitForPollers(stack);
    const stoppedAt = new Date(Date.now() - 11 * 60_000).toISOString();
    await Promise.all(refs.map((r) => stack.lifecycle.stop(r.kind, r.id, { stoppedAt })));
    await Promise.all(refs.map((r) => waitForState(stack, r, 'expired', 120_000)));

    const bulk = new BulkRestoreClient(stack.client);
    const started = await bulk.start({ tag: 'crash', requestedBy: 'crash@example.com', tuning: { concurrency: 4 } });
    const atKill = await waitFor(
      'the bulk restore under way',
      async () => {
        const p = await bulk.progress(started.requestId).catch(() => null);
        return p && p.done >= 4 && p.done <= 16 ? p : null;
      },
      120_000,
      100,
    );
    await killed(worker);
    assert.ok(atKill.done < refs.length, 'killed in the middle');

    worker = stack.spawnWorker();
    const result = await withTimeout(bulk.result(started.requestId), 180_000, 'the bulk restore to finish on the new worker');
    assert.deepEqual(
      {
        total: result.total,
        restored: result.restored,
        failed: result.failed,
        alreadyAvailable: result.alreadyAvailable,
        rows: result.rowsRestored,
      },
      { total: 24, restored: 24, failed: 0, alreadyAvailable: 0, rows: 24 * 1_500 },
    );
    assert.ok(result.runs > 1, 'crossed continue-as-new too');
    for (const r of refs) {
      const rows = await hotRows(stack.db, r);
      assert.equal(rows.length, 1_500, `${r.kind}:${r.id}: no row lost or doubled`);
      assert.equal(sha256(canonicalBytes(rows)), checksums.get(`${r.kind}:${r.id}`));
      assert.equal(await archivedRowCount(stack.db, r), 0);
      const s = await stack.lifecycle.status(r.kind, r.id);
      assert.equal(s?.state, 'stopped');
      assert.equal(s?.archive, null);
    }
    const outbox = await stack.db('email_outbox').where({ to_address: 'crash@example.com' }).select<{ subject: string }[]>('subject');
    assert.equal(outbox.length, 1, 'one summary e-mail');
    assert.match(outbox[0].subject, /^Bulk restore complete: 24 restored/);
    await killed(worker);
  });
});
