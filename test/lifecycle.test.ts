/** The actor on real Temporal and real MySQL: full cycle, late interactions, signals in odd orders. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ResumeRefusedError, UnknownMessageError } from '../src/client/lifecycleClient';
import { ingestEvents } from '../src/dataplane/ingest/ingest';
import { RESUME_REFUSED_MESSAGE, type MessageRef } from '../src/shared/types';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import { sha256, canonicalBytes } from '../src/storage/chunkCodec';
import {
  archivedRowCount,
  createStack,
  hotRows,
  seedInteractions,
  sentEmailsTo,
  waitFor,
  waitUntilSettled,
  waitForState,
  type TestStack,
} from './support/stack';

/** Local activities' markers in every run of the message's actor, as `event id: activity type`. */
async function localActivityMarkers(stack: TestStack, ref: MessageRef): Promise<string[]> {
  const markers: string[] = [];
  const workflowId = lifecycleWorkflowId(ref);
  for await (const run of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const history = await stack.client.workflow.getHandle(workflowId, run.runId).fetchHistory();
    for (const event of history.events ?? []) {
      if (event.markerRecordedEventAttributes?.markerName === 'core_local_activity')
        markers.push(`${run.runId}: event ${String(event.eventId)}`);
    }
  }
  return markers;
}

describe('lifecycle actor', () => {
  let stack: TestStack;

  before(async () => {
    stack = await createStack({ ttl: '3 seconds', cleanupInterval: '2 seconds', chunkRows: 400 });
    await stack.startWorker();
  });
  after(async () => stack?.close());

  it('stop → expired (rows moved, manifest matches) → restore → every row back → expires again', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'full-cycle' };
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: 'Spring sale' });
    await stack.db('message_tags').insert([
      { kind: ref.kind, message_id: ref.id, tag: 'spring' },
      { kind: ref.kind, message_id: ref.id, tag: 'promo' },
    ]);
    await seedInteractions(stack.db, ref, 3_000);
    await seedInteractions(stack.db, { kind: 'campaign', id: 'bystander' }, 500);
    const before = await hotRows(stack.db, ref);
    const beforeChecksum = sha256(canonicalBytes(before));

    const stoppedAt = new Date().toISOString();
    await stack.lifecycle.stop(ref.kind, ref.id, { stoppedAt });
    const stopped = await waitForState(stack, ref, 'stopped');
    const firstRun = (await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).describe()).runId;
    assert.equal(stopped.available, true);
    assert.equal(stopped.stoppedAt, stoppedAt);
    assert.equal(Date.parse(stopped.expiresAt!) - Date.parse(stoppedAt), 3_000, 'deadline is stoppedAt + TTL, absolute');
    assert.deepEqual(stopped.tags, ['promo', 'spring']);

    const expired = await waitForState(stack, ref, 'expired', 30_000);
    assert.equal(expired.available, false);
    assert.equal(expired.expiresAt, null);
    assert.equal((await hotRows(stack.db, ref)).length, 0, 'hot store holds nothing of the message');
    assert.equal((await hotRows(stack.db, { kind: 'campaign', id: 'bystander' })).length, 500, 'other messages untouched');
    assert.equal(expired.archive?.rowCount, 3_000);
    assert.equal(expired.archive?.chunkCount, 8);
    assert.equal(await archivedRowCount(stack.db, ref), 3_000);
    const manifest = await stack
      .db('archive_manifests')
      .where({ message_kind: ref.kind, message_id: ref.id })
      .first<{ status: string; row_count: number | string; checksum: string } | undefined>();
    assert.equal(manifest?.status, 'archived');
    assert.equal(Number(manifest?.row_count), 3_000);
    assert.equal(manifest?.checksum, expired.archive?.checksum);
    // The row every feature reads says so no later than the actor does.
    const availability = await stack
      .db('message_availability')
      .where({ kind: ref.kind, message_id: ref.id })
      .first<{ state: string; available: number | boolean } | undefined>();
    assert.equal(availability?.state, 'expired');
    assert.equal(Number(availability?.available), 0);

    // Visible to operators through the search attributes.
    await waitFor('visibility to show the expired actor', async () => {
      for await (const a of stack.lifecycle.list({ state: 'expired', tag: 'spring', kind: 'campaign' })) {
        if (a.id === ref.id) return a;
      }
      return null;
    });

    await assert.rejects(stack.lifecycle.resume(ref.kind, ref.id), (err: Error) => {
      assert.ok(err instanceof ResumeRefusedError);
      assert.equal(err.message, RESUME_REFUSED_MESSAGE.campaign);
      return true;
    });

    const { requestId, accepted } = await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'admin@example.com' });
    assert.equal(accepted, true);
    const restored = await waitForState(stack, ref, 'stopped', 30_000);
    assert.equal(restored.available, true);
    // Read at once: a client told `stopped` finds the data available to every feature.
    const availableAgain = await stack
      .db('message_availability')
      .where({ kind: ref.kind, message_id: ref.id })
      .first<{ state: string; available: number | boolean } | undefined>();
    assert.equal(availableAgain?.state, 'stopped');
    assert.equal(Number(availableAgain?.available), 1);
    assert.equal(restored.lastRestore?.requestId, requestId);
    assert.equal(restored.lastRestore?.rowCount, 3_000);
    // Both read at once, before a TTL of 3 s can start the next archive.
    const [after, archivedLeft] = await Promise.all([hotRows(stack.db, ref), archivedRowCount(stack.db, ref)]);
    assert.equal(archivedLeft, 0, 'no second copy left in long-term storage');
    assert.equal(after.length, 3_000);
    assert.deepEqual(after, before, 'every row back, byte for byte');
    assert.equal(sha256(canonicalBytes(after)), beforeChecksum);
    assert.ok(Date.parse(restored.expiresAt!) > Date.parse(expired.lastCheckedAt ?? stoppedAt), 'clock re-armed');

    // The e-mail is sent after the message is available again, not before: wait for it.
    const emails = await waitFor('the restore e-mail', async () => {
      const rows = await sentEmailsTo(stack.db, 'admin@example.com');
      return rows.length > 0 ? rows : null;
    });
    await waitUntilSettled(stack, ref);
    assert.equal((await stack.db('email_outbox').where({ to_address: 'admin@example.com' })).length, 1);
    assert.match(emails[0].subject, /Spring sale/);

    // Another TTL of inactivity: it expires again, into a new generation.
    const again = await waitForState(stack, ref, 'expired', 30_000);
    assert.equal(again.archive?.generation, 2);
    assert.equal(again.archive?.rowCount, 3_000);
    assert.equal((await hotRows(stack.db, ref)).length, 0);

    // The test server suggests continue-as-new after 60 events: the actor has crossed it with its
    // state (deadline, generation, restore history) intact.
    const latest = await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).describe();
    assert.notEqual(latest.runId, firstRun, 'continued as new');
    assert.equal(latest.status.name, 'RUNNING');
    assert.equal((await stack.lifecycle.status(ref.kind, ref.id))?.lastRestore?.requestId, requestId);
  });

  it('late interactions of an expired message are stored, invisible, and swept into long-term storage', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'late-arrivals' };
    await seedInteractions(stack.db, ref, 200);
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 30_000);
    // Through ingestion, which notes them so that the actor, asleep after its archive, is woken.
    const late = Array.from({ length: 37 }, (_, i) => ({
      eventId: `late-arrival-${i}`,
      type: 'opened' as const,
      messageKind: ref.kind,
      messageId: ref.id,
      userId: `user-${i}`,
      occurredAt: new Date().toISOString(),
    }));
    assert.equal((await ingestEvents(stack.db, late)).stored, 37);
    await waitFor(
      'late rows swept',
      async () => (await hotRows(stack.db, ref)).length === 0 && (await archivedRowCount(stack.db, ref)) === 237,
      30_000,
    );
    // The rows are committed before the sweep activity returns to the actor, so its status follows a moment later.
    const status = await waitFor(
      'the actor to record the sweep',
      async () => {
        const s = await stack.lifecycle.status(ref.kind, ref.id);
        return s?.archive?.rowCount === 237 ? s : null;
      },
      10_000,
    );
    assert.equal(status?.state, 'expired');
    assert.equal(status?.archive?.rowCount, 237);

    await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'late@example.com' });
    await waitForState(stack, ref, 'stopped', 30_000);
    assert.equal((await hotRows(stack.db, ref)).length, 237);
    // Stop, sweep and restore each plan a deadline; none by a local activity, whose markers beside
    // Updates and continue-as-new made histories that did not replay.
    assert.deepEqual(await localActivityMarkers(stack, ref), []);
  });

  it('a restore that arrives while archiving is honoured once the archive has finished', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'restore-while-archiving' };
    await seedInteractions(stack.db, ref, 20_000, { batch: 2_000 });
    const before = await hotRows(stack.db, ref);
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'archiving', 30_000);
    await stack.client.workflow
      .getHandle(lifecycleWorkflowId(ref))
      .signal('restore', { requestedBy: 'eager@example.com', requestId: 'eager-1' });
    const restored = await waitForState(stack, ref, 'stopped', 60_000);
    assert.equal(restored.lastRestore?.requestId, 'eager-1');
    assert.deepEqual(await hotRows(stack.db, ref), before);
  });

  it('duplicate and out-of-order signals are harmless', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'noisy' };
    await seedInteractions(stack.db, ref, 100);
    const h = stack.client.workflow.getHandle(lifecycleWorkflowId(ref));
    await stack.lifecycle.stop(ref.kind, ref.id);
    await h.signal('stop', {});
    await h.signal('resume', {});
    await h.signal('resume', {});
    // A stop dated before the resume arrives late: ignored.
    await h.signal('stop', { stoppedAt: new Date(Date.now() - 60_000).toISOString() });
    await h.signal('referencesChanged', {});
    await h.signal('restore', { requestedBy: 'nobody@example.com', requestId: 'not-needed' });
    await waitUntilSettled(stack, ref);
    const status = await stack.lifecycle.status(ref.kind, ref.id);
    assert.equal(status?.state, 'active', 'still active: the last meaningful signal was resume');
    assert.equal(status?.lastRefusal?.signal, 'restore');
    assert.equal((await hotRows(stack.db, ref)).length, 100);

    await h.signal('stop', {});
    await waitForState(stack, ref, 'expired', 30_000);
    await h.signal('restore', { requestedBy: 'twice@example.com', requestId: 'same-request' });
    await h.signal('restore', { requestedBy: 'twice@example.com', requestId: 'same-request' });
    await waitForState(stack, ref, 'stopped', 30_000);
    // Checked at once: with a TTL of 3 s the restored rows start moving out again soon.
    assert.equal((await hotRows(stack.db, ref)).length, 100, 'restored once, nothing doubled');
    await waitFor('the restore e-mail', async () => (await sentEmailsTo(stack.db, 'twice@example.com')).length > 0);
    await waitUntilSettled(stack, ref);
    assert.equal((await stack.db('email_outbox').where({ to_address: 'twice@example.com' })).length, 1, 'one e-mail per restore');
  });

  it('a restore of an id no one ever defined, stopped or sent events for is refused and leaves no actor running', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'first-contact' };
    await assert.rejects(stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'first@example.com' }), UnknownMessageError);
    const described = await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).describe();
    assert.notEqual(described.status.name, 'RUNNING', 'the actor ended after refusing');
    assert.equal(
      await stack.db('message_availability').where({ kind: ref.kind, message_id: ref.id }).first(),
      undefined,
      'nothing recorded',
    );
    // A stop is first contact: the actor exists from then on, and a restore is answered by it.
    const stopped = await stack.lifecycle.stop(ref.kind, ref.id);
    assert.equal(stopped.changed, true);
    assert.equal(stopped.state, 'stopped');
    const answer = await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'first@example.com' });
    assert.equal(answer.accepted, false, 'stopped data is available: nothing to restore');
    assert.equal(answer.state, 'stopped');
    const running = await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).describe();
    assert.equal(running.status.name, 'RUNNING');
    assert.equal(running.taskQueue, 'interaction-data');
  });
});
