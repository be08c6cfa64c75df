/**
 * The archiving brake against the real stack: a pause keeps a due message's data available and the
 * actor says why; an archive under way stops after its chunk and carries on from its cursor; resuming
 * wakes the held actors at once; moves run on their own task queue, whose slots bound them per worker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiServer } from '../src/api/app';
import { archivingPause, archivingResume, archivingStatusOf, type ResumeReport } from '../src/client/archivingControl';
import { runCliCaptured } from './support/cli';
import type { MessageRef } from '../src/shared/types';
import { lifecycleWorkflowId, MOVES_TASK_QUEUE } from '../src/shared/workflowId';
import { stackApi } from './support/api';
import { bearer, testAuth, type TestAuth } from './support/auth';
import { archivedRowCount, createStack, hotRowCount, seedInteractions, waitFor, waitForState, type TestStack } from './support/stack';

describe('the archiving brake', () => {
  let stack: TestStack;
  let app: ApiServer;
  let auth: TestAuth;

  before(async () => {
    // A recheck far away: a held actor that moves soon after the resume was woken by it.
    stack = await createStack({
      ttl: '2 seconds',
      cleanupInterval: '1 hour',
      chunkRows: 50,
      env: { ARCHIVING_PAUSE_RECHECK: '1 hour', WORKER_MOVE_SLOTS: '1', MOVE_NICE_RATIO: '0' },
    });
    await stack.startWorker();
    auth = await testAuth(stack.db);
    app = await stackApi(stack, auth);
  });
  after(async () => {
    await app?.close();
    await stack?.close();
  });

  /** When each of the actor's moves ran, over all its runs: [started, closed] in ms. */
  async function moveSpans(ref: MessageRef): Promise<[number, number][]> {
    const spans: [number, number][] = [];
    const workflowId = lifecycleWorkflowId(ref);
    for await (const run of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      const events = (await stack.client.workflow.getHandle(workflowId, run.runId).fetchHistory()).events ?? [];
      const at = (e: (typeof events)[number]) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
      for (const e of events) {
        if (!e.activityTaskCompletedEventAttributes) continue;
        const started = events.find((x) => Number(x.eventId) === Number(e.activityTaskCompletedEventAttributes?.startedEventId));
        const scheduled = events.find((x) => Number(x.eventId) === Number(e.activityTaskCompletedEventAttributes?.scheduledEventId));
        const scheduledOn = scheduled?.activityTaskScheduledEventAttributes;
        if (started && scheduledOn?.taskQueue?.name === MOVES_TASK_QUEUE && scheduledOn.activityType?.name === 'expireMessage') {
          spans.push([at(started), at(e)]);
        }
      }
    }
    return spans;
  }

  const currentDetails = async (ref: MessageRef) =>
    (await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).query<{ currentDetails?: string }>('__temporal_workflow_metadata'))
      .currentDetails ?? '';

  it('keeps due data available while paused, says why, and moves it as soon as archiving resumes', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'braked' };
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: 'Braked' });
    await seedInteractions(stack.db, ref, 120);
    const admin = await auth.token(['admin']);
    const paused = await app.inject({
      method: 'POST',
      url: '/v1/archiving/pause',
      headers: bearer(admin),
      payload: { reason: 'INC-42: replica lag' },
    });
    assert.equal(paused.statusCode, 200, paused.body);
    assert.equal(paused.json<ResumeReport>().paused, true);
    const refused = await app.inject({
      method: 'POST',
      url: '/v1/archiving/pause',
      headers: bearer(await auth.token(['messages'])),
      payload: {},
    });
    assert.equal(refused.statusCode, 403, 'only an admin pulls the brake');

    await stack.lifecycle.stop(ref.kind, ref.id);
    const held = await waitFor('the actor to be held', async () => {
      const status = await stack.lifecycle.status(ref.kind, ref.id);
      return status?.archivingHeld ? status : null;
    });
    assert.equal(held.state, 'stopped');
    assert.equal(held.available, true);
    assert.equal(held.archivingHeld!.reason, 'INC-42: replica lag');
    assert.match(held.archivingHeld!.pausedBy, /\(token:/, 'the admin who paused, by name and id');
    assert.equal(await hotRowCount(stack.db, ref), 120, 'nothing moved');
    const row = await stack.db('message_availability').where({ kind: ref.kind, message_id: ref.id }).first<{ available: number }>();
    assert.equal(Number(row.available), 1);
    const details = await waitFor('the details to say why', async () => {
      const text = await currentDetails(ref);
      return text.includes('archiving is paused') ? text : null;
    });
    assert.match(details, /\*\*archiving is paused\*\* \(by .* at .*: INC-42: replica lag\)/);
    const status = await app.inject({ method: 'GET', url: '/v1/archiving', headers: bearer(await auth.token(['messages'])) });
    assert.equal(status.statusCode, 200);
    assert.equal(status.json<ResumeReport>().heldMessages, 1);

    const resumed = await app.inject({ method: 'POST', url: '/v1/archiving/resume', headers: bearer(admin) });
    assert.equal(resumed.statusCode, 200, resumed.body);
    assert.deepEqual(
      {
        paused: resumed.json<ResumeReport>().paused,
        woken: resumed.json<ResumeReport>().woken,
        held: resumed.json<ResumeReport>().heldMessages,
      },
      { paused: false, woken: 1, held: 0 },
    );
    const expired = await waitForState(stack, ref, 'expired', 30_000);
    assert.equal(expired.archivingHeld, null);
    assert.equal(await archivedRowCount(stack.db, ref), 120);

    // The move ran on the moves task queue, which the worker polls with WORKER_MOVE_SLOTS slots.
    const queues: (string | null | undefined)[] = [];
    const workflowId = lifecycleWorkflowId(ref);
    for await (const run of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      for (const e of (await stack.client.workflow.getHandle(workflowId, run.runId).fetchHistory()).events ?? []) {
        const a = e.activityTaskScheduledEventAttributes;
        if (a?.activityType?.name === 'expireMessage') queues.push(a.taskQueue?.name);
      }
    }
    assert.deepEqual(queues, [MOVES_TASK_QUEUE]);
  });

  it('counts a held message that was resumed meanwhile no longer as held', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'held-then-resumed' };
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: 'Held then resumed' });
    await seedInteractions(stack.db, ref, 10);
    await archivingPause(stack.db, 'test', 'drill');
    try {
      await stack.lifecycle.stop(ref.kind, ref.id);
      await waitFor('the actor to be held', async () => (await stack.lifecycle.status(ref.kind, ref.id))?.archivingHeld ?? null);
      assert.equal((await archivingStatusOf(stack.db)).heldMessages, 1);
      assert.deepEqual(await stack.lifecycle.resume(ref.kind, ref.id), { changed: true, state: 'active' });
      await waitFor('the row to say active', async () =>
        (await stack.db('message_availability').where({ kind: ref.kind, message_id: ref.id }).first<{ state: string }>())?.state ===
        'active'
          ? true
          : null,
      );
      assert.equal((await archivingStatusOf(stack.db)).heldMessages, 0, 'an active message is not held');
    } finally {
      await archivingResume(stack.db, 'test', (held) => stack.lifecycle.referencesChanged(held.kind, held.id));
    }
    assert.equal((await stack.db('archiving_holds').where({ message_kind: ref.kind, message_id: ref.id })).length, 0, 'resume forgets it');
    assert.equal((await stack.lifecycle.status(ref.kind, ref.id))?.state, 'active');
  });

  it('stops an archive under way after its chunk, and carries on from its cursor once resumed', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'halted' };
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: 'Halted' });
    await seedInteractions(stack.db, ref, 3000);
    // Slow chunks (the worker reads its configuration when a move starts), so the pause lands mid-way.
    stack.config.moveThrottle.niceRatio = 5;
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitFor(
      'the archive to store its first chunks',
      async () => {
        const row = await stack
          .db('archive_chunks')
          .where({ message_kind: ref.kind, message_id: ref.id })
          .count<{ n: number }[]>({ n: '*' })
          .first();
        return Number(row?.n ?? 0) > 0 ? true : null;
      },
      30_000,
      5,
    );
    const env = { ...process.env, ...stack.env };
    const paused = await runCliCaptured(['archiving', 'pause', '--reason', 'halt the move'], env);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /archiving is PAUSED by cli:.* \(halt the move\)/);
    stack.config.moveThrottle.niceRatio = 0;
    const stalled = await waitFor('the archive to stop', async () => {
      const description = await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).describe();
      const pending = description.raw.pendingActivities?.[0];
      return pending?.lastFailure?.message?.includes('archiving is paused') ? pending : null;
    });
    assert.equal(stalled.activityType?.name, 'expireMessage');
    const chunks = async () =>
      Number(
        (await stack.db('archive_chunks').where({ message_kind: ref.kind, message_id: ref.id }).count<{ n: number }[]>({ n: '*' }).first())
          ?.n ?? 0,
      );
    const stoppedAt = await chunks();
    assert.ok(stoppedAt < 60, `the archive stopped part-way (${stoppedAt} of 60 chunks)`);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await chunks(), stoppedAt, 'no chunk is stored while paused');
    const status = (await stack.lifecycle.status(ref.kind, ref.id))!;
    assert.equal(status.state, 'archiving');
    assert.equal(status.available, false);

    const resumed = await runCliCaptured(['archiving', 'resume'], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /archiving runs \(resumed by cli:/);
    const audited = await stack.db('audit_log').whereIn('route', ['archiving pause', 'archiving resume']).select('route');
    assert.deepEqual(audited.map((r: { route: string }) => r.route).sort(), ['archiving pause', 'archiving resume']);
    await waitForState(stack, ref, 'expired', 90_000);
    assert.equal(await archivedRowCount(stack.db, ref), 3000, 'every row archived once, from the cursor on');
    assert.equal(await hotRowCount(stack.db, ref), 0);
    assert.equal((await archivingStatusOf(stack.db)).paused, false);
  });

  it('runs at most WORKER_MOVE_SLOTS moves at once in a worker', async () => {
    const refs: MessageRef[] = ['one', 'two', 'three'].map((id) => ({ kind: 'campaign', id: `slot-${id}` }));
    for (const ref of refs) await seedInteractions(stack.db, ref, 400);
    // Chunks that take a while, so moves that could overlap would.
    stack.config.moveThrottle.niceRatio = 3;
    try {
      await Promise.all(refs.map((ref) => stack.lifecycle.stop(ref.kind, ref.id)));
      for (const ref of refs) await waitForState(stack, ref, 'expired', 60_000);
    } finally {
      stack.config.moveThrottle.niceRatio = 0;
    }
    const spans = (await Promise.all(refs.map(moveSpans))).flat().sort((a, b) => a[0] - b[0]);
    assert.equal(spans.length, 3);
    for (let i = 1; i < spans.length; i += 1) {
      assert.ok(spans[i][0] >= spans[i - 1][1], `move ${i + 1} started before move ${i} ended: ${JSON.stringify(spans)}`);
    }
  });
});
