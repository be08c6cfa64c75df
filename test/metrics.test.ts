/** Prometheus metrics of the API (GET /metrics) and the worker (WORKER_METRICS_PORT), after a real cycle. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiServer } from '../src/api/app';
import type { MessageRef } from '../src/shared/types';
import { freePort } from '../src/temporal/devServer';
import { stackApi } from './support/api';
import { bearer, testAuth, type TestAuth } from './support/auth';
import { createStack, waitFor, waitForState, type TestStack } from './support/stack';

/** The value of the sample of `name` with all of `labels` (`a="x",b="y"`, in any order); 0 when absent. */
function sample(text: string, name: string, labels = ''): number {
  const wanted = labels ? labels.split(',') : [];
  const line = text.split('\n').find((l) => {
    if (!l.startsWith(`${name}{`) && !l.startsWith(`${name} `)) return false;
    const own =
      l
        .slice(name.length)
        .match(/^\{([^}]*)\}/)?.[1]
        .split(',') ?? [];
    return wanted.every((w) => own.includes(w)) && own.length === wanted.length;
  });
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('metrics', () => {
  let stack: TestStack;
  let app: ApiServer;
  let auth: TestAuth;
  let workerMetrics: string;

  before(async () => {
    stack = await createStack({ ttl: '2 seconds', cleanupInterval: '1 hour', chunkRows: 10 });
    const port = await freePort();
    stack.config.workerMetricsPort = port;
    workerMetrics = `http://127.0.0.1:${port}/metrics`;
    await stack.startWorker();
    auth = await testAuth(stack.db);
    app = await stackApi(stack, auth);
  });
  after(async () => {
    await app?.close();
    await stack?.close();
  });

  it('count events ingested, rows archived and restored, moves, e-mails and messages by state', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'metered' };
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: 'Metered' });
    const events = Array.from({ length: 25 }, (_, i) => ({
      eventId: `metered-${i}`,
      type: 'opened',
      channel: 'email',
      messageKind: ref.kind,
      messageId: ref.id,
      userId: `user-${i}`,
      occurredAt: new Date().toISOString(),
    }));
    const ingest = await auth.token(['ingest']);
    const post = (body: unknown) =>
      app.inject({ method: 'POST', url: '/v1/interactions', headers: bearer(ingest), payload: body as object });
    const first = await post({ events });
    assert.equal(first.statusCode, 200, first.body);
    assert.equal((await post({ events: events.slice(0, 5) })).statusCode, 200, 'the same events again: duplicates');

    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 30_000);
    await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'ops@example.com' });
    await waitForState(stack, ref, 'stopped', 30_000);

    const fromApi = await app.inject({ method: 'GET', url: '/metrics', headers: bearer(await auth.token(['messages'])) });
    assert.equal(fromApi.statusCode, 200);
    assert.match(String(fromApi.headers['content-type']), /^text\/plain/);
    assert.equal(sample(fromApi.body, 'interaction_data_events_ingested_total', 'outcome="stored"'), 25);
    assert.equal(sample(fromApi.body, 'interaction_data_events_ingested_total', 'outcome="duplicate"'), 5);
    assert.equal(sample(fromApi.body, 'interaction_data_messages', 'state="stopped"'), 1);
    assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401, 'a token is needed');

    // The restore e-mail is sent beside the actor's loop: its count comes a moment after the state.
    const text = await waitFor('the e-mail to be counted', async () => {
      const res = await fetch(workerMetrics);
      assert.equal(res.status, 200);
      const body = await res.text();
      return sample(body, 'interaction_data_restore_emails_total', 'outcome="sent"') >= 1 ? body : null;
    });
    assert.equal(sample(text, 'interaction_data_rows_moved_total', 'move="archive"'), 25);
    assert.equal(sample(text, 'interaction_data_rows_moved_total', 'move="restore"'), 25);
    assert.ok(sample(text, 'interaction_data_move_duration_seconds_count', 'move="archive",outcome="ok"') >= 1);
    assert.ok(sample(text, 'interaction_data_move_duration_seconds_count', 'move="restore",outcome="ok"') >= 1);
    assert.ok(sample(text, 'interaction_data_restore_emails_total', 'outcome="sent"') >= 1);
    assert.ok(sample(text, 'interaction_data_process_resident_memory_bytes') > 0);
    assert.equal((await fetch(workerMetrics.replace('/metrics', '/other'))).status, 404);
  });

  it("exports the Temporal SDK's own worker metrics at TEMPORAL_SDK_METRICS_ADDRESS", async () => {
    // A worker process of its own: the SDK's runtime, and so its exporter, is installed once per process.
    const address = `127.0.0.1:${await freePort()}`;
    const child = stack.spawnWorker({ TEMPORAL_SDK_METRICS_ADDRESS: address });
    try {
      /** The SDK's `temporal_worker_task_slots_available` line of a task queue's worker of `type`. */
      const slotsOf = (body: string, queue: string, type: string) =>
        body
          .split('\n')
          .find(
            (l) =>
              l.startsWith('temporal_worker_task_slots_available{') &&
              l.includes(`task_queue="${queue}"`) &&
              l.includes(`worker_type="${type}"`),
          );
      const moves = await waitFor(
        "the SDK's slots of both task queues",
        async () => {
          const body = await fetch(`http://${address}/metrics`).then(
            (res) => (res.ok ? res.text() : ''),
            () => '',
          );
          return slotsOf(body, 'interaction-data', 'WorkflowWorker')
            ? (slotsOf(body, 'interaction-data-moves', 'ActivityWorker') ?? null)
            : null;
        },
        60_000,
        500,
      );
      // The moves queue's activity slots are WORKER_MOVE_SLOTS.
      assert.equal(Number(moves.slice(moves.lastIndexOf(' ') + 1)), stack.config.worker.moveSlots);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
