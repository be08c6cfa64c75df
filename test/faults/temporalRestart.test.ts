/**
 * The Temporal dev server is SIGKILLed and restarted on its SQLite file while hundreds of actors sleep
 * on their expiry timers (then stopped and started once more, cleanly). Every actor still expires, and
 * none twice: one archive generation per message, each holding exactly that message's rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { InteractionEvent } from '../../src/dataplane/ingest/events';
import { ingestEvents } from '../../src/dataplane/ingest/ingest';
import type { MessageRef } from '../../src/shared/types';
import { createStack, hotRowCount, sleep, waitFor, type TestStack } from '../support/stack';
import { bySize, reporter } from './support';

const ACTORS = bySize({ short: 100, full: 750 });
const ROWS_EACH = 5;
const SIGNAL_CONCURRENCY = 16;
/** Sleep every actor has left after the last stop, for the two restarts of the server. */
const RESTART_ROOM_SECONDS = bySize({ short: 30, full: 90 });

describe('Temporal server killed while actors sleep', () => {
  let stack: TestStack;
  // Long enough to stop every actor and restart the server twice before the first deadline, on a
  // loaded 2-core machine.
  const ttlSeconds = bySize({ short: 90, full: 420 });

  before(async () => {
    stack = await createStack({ privateServer: true, ttl: `${ttlSeconds} seconds`, cleanupInterval: '1 hour' });
    await stack.startWorker();
  });
  after(async () => stack?.close());

  async function countState(state: string, refs: MessageRef[]): Promise<number> {
    const [{ n }] = await stack
      .db('message_availability')
      .whereIn(
        'message_id',
        refs.map((r) => r.id),
      )
      .andWhere({ state })
      .count<{ n: number }[]>('* as n');
    return Number(n);
  }

  it(
    `${ACTORS} sleeping actors all expire after a kill and a restart of the server, none twice`,
    { timeout: bySize({ short: 10, full: 45 }) * 60_000 },
    async (t) => {
      const say = reporter((m) => t.diagnostic(m));
      const refs: MessageRef[] = Array.from({ length: ACTORS }, (_, i) => ({ kind: i % 2 ? 'canvas' : 'campaign', id: `sleeper-${i}` }));
      // ROWS_EACH rows per message, through ingestion, which makes each message's table.
      const events: InteractionEvent[] = refs.flatMap((ref, a) =>
        Array.from({ length: ROWS_EACH }, (_, b) => ({
          eventId: `${ref.id}-${b}`,
          type: 'received' as const,
          messageKind: ref.kind,
          messageId: ref.id,
          userId: `user-${b}`,
          channel: 'email' as const,
          occurredAt: new Date(Date.UTC(2026, 0, 1) + a * 1000).toISOString(),
          ...(ref.kind === 'canvas' ? { stepId: 'step-1' } : {}),
        })),
      );
      for (let i = 0; i < events.length; i += 500) await ingestEvents(stack.db, events.slice(i, i + 500));

      const started = Date.now();
      const deadlines = new Map<string, number>();
      for (let i = 0; i < refs.length; i += SIGNAL_CONCURRENCY) {
        // Each stop is dated so that its deadline falls after the stops still to come (estimated twice
        // over from the pace so far) and the restarts, and no later than the TTL allows. The expiries
        // then begin soon after the restarts, not a whole TTL after the last stop, and the deadlines stay
        // spread as the stops were: hundreds of archives falling due at once would each wait on the others.
        const now = Date.now();
        const perStopMs = i === 0 ? Infinity : (now - started) / i;
        const sleepMs = Math.min(ttlSeconds * 1000, 2 * perStopMs * (ACTORS - i) + RESTART_ROOM_SECONDS * 1000);
        const stoppedAt = new Date(now + sleepMs - ttlSeconds * 1000).toISOString();
        await Promise.all(
          refs.slice(i, i + SIGNAL_CONCURRENCY).map(async (r) => {
            const stopped = await stack.lifecycle.stop(r.kind, r.id, { stoppedAt });
            deadlines.set(r.id, Date.parse(stopped.expiresAt ?? ''));
          }),
        );
      }
      await waitFor('every actor stopped', async () => (await countState('stopped', refs)) === ACTORS, (ttlSeconds - 20) * 1000, 500);
      const asleepAfter = (Date.now() - started) / 1000;
      say(`${ACTORS} actors stopped and asleep after ${asleepAfter.toFixed(1)} s; TTL ${ttlSeconds} s`);
      assert.ok(asleepAfter < ttlSeconds - 15, 'the restarts happen before the first deadline');

      await stack.restartServer('kill');
      say('server SIGKILLed and started again on its SQLite file');
      await sleep(2_000);
      await stack.restartServer('stop');
      say('server stopped and started again');
      assert.equal(await countState('expired', refs), 0, 'nobody expired early');

      await waitFor(
        'every actor expired',
        async () => (await countState('expired', refs)) === ACTORS,
        bySize({ short: 6, full: 30 }) * 60_000,
        1_000,
      );
      say(`all ${ACTORS} expired ${((Date.now() - started) / 1000).toFixed(1)} s after the first stop`);

      const manifests = await stack
        .db('archive_manifests')
        .whereIn(
          'message_id',
          refs.map((r) => r.id),
        )
        .select<{ message_kind: string; message_id: string; generation: number; row_count: number; status: string }[]>(
          'message_kind',
          'message_id',
          'generation',
          'row_count',
          'status',
        );
      assert.equal(manifests.length, ACTORS, 'one archive per actor, none twice');
      for (const m of manifests) {
        assert.equal(Number(m.generation), 1, `${m.message_id} archived once`);
        assert.equal(Number(m.row_count), ROWS_EACH, `${m.message_id} archived all of its rows`);
        assert.equal(m.status, 'archived');
      }
      let hot = 0;
      for (const ref of refs) hot += await hotRowCount(stack.db, ref);
      assert.equal(hot, 0, 'no hot rows left');
      // Every actor's own view agrees (a sample keeps this quick).
      for (const ref of refs.filter((_, i) => i % Math.max(1, Math.floor(ACTORS / 50)) === 0)) {
        const s = await stack.lifecycle.status(ref.kind, ref.id);
        assert.equal(s?.state, 'expired');
        assert.equal(s?.archive?.generation, 1);
        assert.ok(Date.parse(s?.lastCheckedAt ?? '') >= (deadlines.get(ref.id) ?? NaN), `${ref.id} expired at its deadline, not before`);
      }
    },
  );
});
