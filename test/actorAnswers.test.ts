/**
 * Every answer true (issue 24): the actor answers stop, resume and restore itself, decides a resume in
 * order with its deadline, checks rule 9 for every caller, shows a problem instead of retrying in
 * silence, and keeps accepted restore requests across a terminate.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ensureTemporalBinary } from '../scripts/ensureTemporal';
import knexFactory, { type Knex } from 'knex';
import { ResumeRefusedError, UnknownMessageError } from '../src/client/lifecycleClient';
import { InteractionDataProblem } from '../src/shared/searchAttributes';
import type { MessageRef } from '../src/shared/types';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import { GUARD_MESSAGES } from '../src/dataplane/guards';
import { createStack, hotRowCount, seedInteractions, sentEmailsTo, waitFor, waitForState, type TestStack } from './support/stack';

describe('the actor answers requests itself', () => {
  let stack: TestStack;
  /** A connection of its own, for LOCK TABLES that stall one of the actor's steps. */
  let locker: Knex;

  before(async () => {
    stack = await createStack({ ttl: '2 seconds', cleanupInterval: '30 seconds', chunkRows: 100 });
    await stack.startWorker();
    locker = knexFactory({ client: 'mysql2', connection: stack.env.MYSQL_URL, pool: { min: 1, max: 1 } });
  });
  after(async () => {
    await locker?.destroy();
    await stack?.close();
  });

  async function pendingActivity(ref: MessageRef, name: string): Promise<boolean> {
    const d = await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).describe();
    return (d.raw.pendingActivities ?? []).some((p) => p.activityType?.name === name);
  }

  async function define(ref: MessageRef, name: string): Promise<void> {
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name });
  }

  it('a resume that meets the deadline is decided with it: resumed, and nothing archived', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'race' };
    await define(ref, 'Race');
    await seedInteractions(stack.db, ref, 50);
    // The deadline's reference count waits on this lock, so the resume arrives while the expiry is decided.
    await locker.raw('LOCK TABLES audience_filters WRITE');
    try {
      const stopped = await stack.lifecycle.stop(ref.kind, ref.id);
      assert.equal(stopped.changed, true);
      assert.equal(stopped.state, 'stopped');
      await waitFor('the deadline step to start', () => pendingActivity(ref, 'countReferences'), 30_000);
      const accepted = async () =>
        ((await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).fetchHistory()).events ?? []).filter(
          (e) => e.workflowExecutionUpdateAcceptedEventAttributes,
        ).length;
      const acceptedBefore = await accepted();
      const resumed = stack.lifecycle.resume(ref.kind, ref.id);
      await waitFor('the actor to accept the resume', async () => (await accepted()) > acceptedBefore);
      await locker.raw('UNLOCK TABLES');
      const answer = await resumed;
      assert.deepEqual(answer, { changed: true, state: 'active' });
    } finally {
      await locker.raw('UNLOCK TABLES');
    }
    const status = await stack.lifecycle.status(ref.kind, ref.id);
    assert.equal(status?.state, 'active');
    assert.equal(status?.lastRefusal, null);
    assert.equal(await hotRowCount(stack.db, ref), 50, 'nothing moved');
    assert.equal(await stack.db('archive_manifests').where({ message_kind: ref.kind, message_id: ref.id }).first(), undefined);
  });

  it('a resume of expired data is refused with rule 9 words and changes nothing', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'gone' };
    await define(ref, 'Gone');
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 30_000);
    await assert.rejects(stack.lifecycle.resume(ref.kind, ref.id), (err: Error) => {
      assert.ok(err instanceof ResumeRefusedError);
      assert.equal(err.message, 'Resume is only available for stopped Canvases with available interaction data');
      return true;
    });
    assert.equal((await stack.lifecycle.status(ref.kind, ref.id))?.state, 'expired');
  });

  it('every caller gets rule 9 for the message’s own audiences (the CLI and Temporal CLI included)', async () => {
    const expired: MessageRef = { kind: 'campaign', id: 'old-source' };
    const ref: MessageRef = { kind: 'campaign', id: 'retargeter' };
    await define(expired, 'Old source');
    await define(ref, 'Retargeter');
    await stack.lifecycle.stop(expired.kind, expired.id);
    await waitForState(stack, expired, 'expired', 30_000);
    await stack
      .db('audiences')
      .insert({ id: 'retargeter-audience', type: 'campaign', message_id: ref.id, active: false, name: 'Retargeter audience' });
    await stack.db('audience_filters').insert({
      audience_id: 'retargeter-audience',
      filter_type: 'received_message_from_campaign',
      target_kind: expired.kind,
      target_id: expired.id,
    });
    await stack.lifecycle.stop(ref.kind, ref.id, { stoppedAt: new Date(Date.now() + 60_000).toISOString() });
    await assert.rejects(stack.lifecycle.resume(ref.kind, ref.id), (err: Error) => {
      assert.ok(err instanceof ResumeRefusedError);
      assert.equal(err.message, GUARD_MESSAGES.campaigns);
      return true;
    });
    const status = await stack.lifecycle.status(ref.kind, ref.id);
    assert.equal(status?.state, 'stopped', 'not resumed');
    assert.equal(status?.lastRefusal?.reason, GUARD_MESSAGES.campaigns);
  });

  it('ids are exact: a restore of another spelling is an unknown message and starts no actor', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'big' };
    await define(ref, 'Big');
    await stack.lifecycle.stop(ref.kind, ref.id);
    await assert.rejects(stack.lifecycle.restore('campaign', 'BIG', { requestedBy: 'ops@example.com' }), UnknownMessageError);
    const other = await stack.client.workflow.getHandle(lifecycleWorkflowId({ kind: 'campaign', id: 'BIG' })).describe();
    assert.notEqual(other.status.name, 'RUNNING');
    assert.equal(await stack.db('message_availability').where({ kind: 'campaign', message_id: 'BIG' }).first(), undefined);
    assert.equal((await stack.lifecycle.status(ref.kind, ref.id))?.pendingRestores.length, 0, 'the real actor was not asked');
  });

  it('a restore that cannot proceed shows a problem, tells its requester, and is served after a fix and a retry', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'corrupt' };
    await define(ref, 'Corrupt');
    await seedInteractions(stack.db, ref, 250);
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 30_000);
    const chunk = await stack
      .db('archive_chunks')
      .where({ message_kind: ref.kind, message_id: ref.id, seq: 1 })
      .first<{ checksum: string }>();
    await stack
      .db('archive_chunks')
      .where({ message_kind: ref.kind, message_id: ref.id, seq: 1 })
      .update({ checksum: '0'.repeat(64) });

    const accepted = await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'analyst@example.com', requestId: 'corrupt-1' });
    // The answer comes once the request is kept; by then the restore may have begun.
    assert.deepEqual({ ...accepted, state: undefined }, { requestId: 'corrupt-1', accepted: true, state: undefined });
    assert.ok(['expired', 'restoring'].includes(accepted.state), `state ${accepted.state}`);
    const status = await waitFor('the problem to show', async () => {
      const s = await stack.lifecycle.status(ref.kind, ref.id);
      return s?.problem ? s : null;
    });
    assert.equal(status.problem?.activity, 'restoreInteractions');
    assert.equal(status.problem?.type, 'ChunkIntegrityError');
    assert.equal(status.state, 'restoring');
    const d = await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).describe();
    assert.equal(d.typedSearchAttributes.get(InteractionDataProblem), 'ChunkIntegrityError', 'operators can filter on it');
    const retrying = (d.raw.pendingActivities ?? []).filter((p) => p.activityType?.name === 'restoreInteractions');
    assert.equal(retrying.length, 0, 'nothing retried in silence');
    const told = await waitFor('the requester to be told', async () => {
      const mails = await sentEmailsTo(stack.db, 'analyst@example.com');
      return mails.length > 0 ? mails : null;
    });
    assert.match(told[0].subject, /cannot proceed/);
    assert.match(told[0].body, /ChunkIntegrityError/);
    // A request accepted while the problem stands is told at once, too.
    const second = await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'second@example.com', requestId: 'corrupt-2' });
    assert.equal(second.accepted, true);
    await waitFor('the second requester to be told', async () => (await sentEmailsTo(stack.db, 'second@example.com')).length === 1);

    await stack.db('archive_chunks').where({ message_kind: ref.kind, message_id: ref.id, seq: 1 }).update({ checksum: chunk?.checksum });
    assert.deepEqual(await stack.lifecycle.retry(ref.kind, ref.id), { retried: 'restoreInteractions' });
    const restored = await waitForState(stack, ref, 'stopped', 30_000);
    assert.equal(restored.problem, null);
    assert.equal(restored.lastRestore?.requestId, 'corrupt-2', 'both requests served, the later one last');
    assert.equal(await hotRowCount(stack.db, ref), 250);
    await waitFor(
      'the restored e-mails',
      async () =>
        (await sentEmailsTo(stack.db, 'analyst@example.com')).length === 2 &&
        (await sentEmailsTo(stack.db, 'second@example.com')).length === 2,
    );
  });

  it('an accepted restore survives the actor being terminated', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'terminated' };
    await define(ref, 'Terminated');
    await seedInteractions(stack.db, ref, 120);
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 30_000);
    // The restore waits on this lock, so the actor is terminated with the request accepted and unserved.
    await locker.raw('LOCK TABLES archive_manifests WRITE, archive_chunks WRITE');
    try {
      const accepted = await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'kept@example.com', requestId: 'kept-1' });
      assert.equal(accepted.accepted, true);
      await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).terminate('test: an operator terminates the actor');
    } finally {
      await locker.raw('UNLOCK TABLES');
    }
    // Any contact starts a new run, which finds the request in MySQL and serves it.
    await stack.lifecycle.referencesChanged(ref.kind, ref.id);
    const restored = await waitForState(stack, ref, 'stopped', 60_000);
    assert.equal(restored.lastRestore?.requestId, 'kept-1');
    assert.equal(await hotRowCount(stack.db, ref), 120);
    await waitFor('the e-mail to the requester', async () => (await sentEmailsTo(stack.db, 'kept@example.com')).length === 1);
    const row = await stack
      .db('restore_requests')
      .where({ kind: ref.kind, message_id: ref.id, request_id: 'kept-1' })
      .first<{ settled_at: string | null } | undefined>();
    assert.ok(row?.settled_at, 'settled once served');
  });

  /** The official Temporal CLI, as an operator types it. */
  async function temporalCli(...args: string[]): Promise<{ code: number; out: string }> {
    const base = ['--address', stack.env.TEMPORAL_ADDRESS, '--namespace', stack.env.TEMPORAL_NAMESPACE];
    try {
      const { stdout, stderr } = await promisify(execFile)(await ensureTemporalBinary(), [...args, ...base]);
      return { code: 0, out: stdout + stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  }

  it('the Temporal CLI gets the same answers: a resume of expired data refused with rule 9 words, a retry with no problem refused', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'cli-expired' };
    await define(ref, 'CLI expired');
    await stack.lifecycle.stop(ref.kind, ref.id, { stoppedAt: '2020-01-01T00:00:00Z' });
    await waitForState(stack, ref, 'expired', 30_000);
    const resume = await temporalCli(
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      lifecycleWorkflowId(ref),
      '--name',
      'resume',
      '--input',
      '{}',
    );
    assert.notEqual(resume.code, 0);
    assert.match(resume.out, /Resume is only available for stopped Campaigns with available interaction data/);
    const retry = await temporalCli('workflow', 'update', 'execute', '--workflow-id', lifecycleWorkflowId(ref), '--name', 'retry');
    assert.notEqual(retry.code, 0);
    assert.match(retry.out, /nothing to retry/);
    const stop = await temporalCli(
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      lifecycleWorkflowId(ref),
      '--name',
      'stop',
      '--input',
      '{}',
    );
    assert.equal(stop.code, 0, stop.out);
    assert.match(stop.out, /changed:false/);
    assert.equal((await stack.lifecycle.status(ref.kind, ref.id))?.state, 'expired');
  });

  it('an accepted restore survives a reset of the actor to the start of its run', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'reset' };
    await define(ref, 'Reset');
    await seedInteractions(stack.db, ref, 80);
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 30_000);
    await locker.raw('LOCK TABLES archive_manifests WRITE, archive_chunks WRITE');
    try {
      const accepted = await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'reset@example.com', requestId: 'reset-1' });
      assert.equal(accepted.accepted, true);
      const reset = await temporalCli(
        'workflow',
        'reset',
        '--workflow-id',
        lifecycleWorkflowId(ref),
        '--type',
        'FirstWorkflowTask',
        '--reason',
        'test: an operator resets the actor',
        '--yes',
      );
      assert.equal(reset.code, 0, reset.out);
    } finally {
      await locker.raw('UNLOCK TABLES');
    }
    const restored = await waitForState(stack, ref, 'stopped', 60_000);
    assert.equal(restored.lastRestore?.requestId, 'reset-1');
    assert.equal(await hotRowCount(stack.db, ref), 80);
    await waitFor('the e-mail to the requester', async () => (await sentEmailsTo(stack.db, 'reset@example.com')).length === 1);
  });
});
