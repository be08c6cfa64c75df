/**
 * An expired actor sleeps without a timer, and late interactions wake it (issue 29, point 1): nothing
 * runs for it while nothing arrives, and nothing that arrives is left behind, whether it races the
 * archive, arrives while the actor sleeps, or races a restore.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ingestEvents } from '../src/dataplane/ingest/ingest';
import type { InteractionEvent } from '../src/dataplane/ingest/events';
import type { MessageRef } from '../src/shared/types';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import { createStack, hotRows, seedInteractions, sleep, waitFor, waitForState, type TestStack } from './support/stack';

const CLEANUP_SECONDS = 1;

let seq = 0;
function lateEvents(ref: MessageRef, n: number): InteractionEvent[] {
  return Array.from({ length: n }, () => ({
    eventId: `late-${process.pid}-${seq++}`,
    type: 'opened' as const,
    messageKind: ref.kind,
    messageId: ref.id,
    userId: `late-user-${seq % 13}`,
    occurredAt: new Date().toISOString(),
  }));
}

describe('late interactions wake an actor asleep after its archive', () => {
  let stack: TestStack;

  before(async () => {
    stack = await createStack({ ttl: '4 seconds', cleanupInterval: `${CLEANUP_SECONDS} second`, chunkRows: 500 });
    await stack.startWorker();
  });
  after(async () => stack?.close());

  const historyLength = async (ref: MessageRef) =>
    Number((await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).describe()).historyLength);

  /** Rows in the message's latest archived generation. */
  async function latestGenerationRows(ref: MessageRef): Promise<number> {
    const manifest = await stack
      .db('archive_manifests')
      .where({ message_kind: ref.kind, message_id: ref.id })
      .orderBy('generation', 'desc')
      .first<{ generation: number; status: string } | undefined>('generation', 'status');
    if (!manifest || manifest.status !== 'archived') return -1;
    const row = await stack
      .db('archive_chunks')
      .where({ message_kind: ref.kind, message_id: ref.id, generation: manifest.generation })
      .whereNotNull('verified_at')
      .sum<{ n: string | null }>('row_count as n')
      .first();
    return Number(row?.n ?? 0);
  }

  /** Every row archived in the latest generation, none hot, and the actor's history still for a few intervals. */
  async function settlesAsleep(ref: MessageRef, rows: number): Promise<void> {
    await waitFor(
      `${rows} rows of ${ref.id} archived and none hot`,
      async () => (await hotRows(stack.db, ref)).length === 0 && (await latestGenerationRows(ref)) === rows,
      60_000,
    );
    const status = await waitFor('the actor to record it', async () => {
      const s = await stack.lifecycle.status(ref.kind, ref.id);
      return s?.state === 'expired' && s.archive?.rowCount === rows ? s : null;
    });
    assert.equal(status.expiresAt, null);
    // Asleep: no timer fires, no activity runs, so the history stops growing for good (a wake-up noted
    // just before the last sweep may still bring one more, finding nothing). An actor with a timer
    // would grow in every window of several intervals.
    await waitFor(
      `${ref.id}'s history to stay still for ${4 * CLEANUP_SECONDS} s`,
      async () => {
        const length = await historyLength(ref);
        await sleep(4 * CLEANUP_SECONDS * 1000);
        return (await historyLength(ref)) === length;
      },
      30_000,
      0,
    );
  }

  it('sleeps once archived; a late event wakes it, is swept, and it sleeps again', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'sleeper' };
    await seedInteractions(stack.db, ref, 120);
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 30_000);
    await settlesAsleep(ref, 120);

    const result = await ingestEvents(stack.db, lateEvents(ref, 9));
    assert.equal(result.stored, 9);
    const noted = await stack
      .db('late_wakeups')
      .where({ message_kind: ref.kind, message_id: ref.id })
      .first<{ noted_at: Date } | undefined>('noted_at');
    assert.ok(noted, 'ingestion noted the late event durably');
    await settlesAsleep(ref, 129);

    // Events of an available message are not noted.
    const other: MessageRef = { kind: 'campaign', id: 'awake' };
    await ingestEvents(stack.db, lateEvents(other, 3));
    assert.equal(await stack.db('late_wakeups').where({ message_kind: other.kind, message_id: other.id }).first(), undefined);
  });

  it('events racing the archive, then arriving while it sleeps, all end up archived', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'racing-archive' };
    await seedInteractions(stack.db, ref, 20_000, { batch: 2_000 });
    let ingested = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        ingested += (await ingestEvents(stack.db, lateEvents(ref, 7))).stored;
        await sleep(20 + Math.random() * 60);
      }
    })();
    try {
      await stack.lifecycle.stop(ref.kind, ref.id);
      await waitForState(stack, ref, 'archiving', 30_000);
      await waitForState(stack, ref, 'expired', 60_000);
      await sleep(2_500); // past the first sweeps, and into a sleep
    } finally {
      stop = true;
      await writer;
    }
    assert.ok(ingested > 0);
    await settlesAsleep(ref, 20_000 + ingested);
  });

  it('events racing a restore are there when the data is back, and archived with it next time', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'racing-restore' };
    await seedInteractions(stack.db, ref, 10_000, { batch: 2_000 });
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 60_000);
    let ingested = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        ingested += (await ingestEvents(stack.db, lateEvents(ref, 5))).stored;
        await sleep(20 + Math.random() * 40);
      }
    })();
    try {
      await sleep(300);
      await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'ops@example.com' });
      await waitForState(stack, ref, 'stopped', 60_000);
      await sleep(300);
    } finally {
      stop = true;
      await writer;
    }
    const back = await stack.lifecycle.status(ref.kind, ref.id);
    assert.equal(back?.state, 'stopped', 'the TTL is longer than this step');
    assert.equal((await hotRows(stack.db, ref)).length, 10_000 + ingested, 'every row back and every late one kept');
    // The next expiry archives them all in a new generation.
    await waitForState(stack, ref, 'expired', 60_000);
    await settlesAsleep(ref, 10_000 + ingested);
  });
});
