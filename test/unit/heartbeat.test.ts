import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { heartbeatWhile, type HeartbeatContext } from '../../activities/heartbeat';

/** An activity context that records its heartbeats with the time each was sent. */
function recordingContext(heartbeatTimeoutMs: number) {
  const beats: { at: number; details: unknown }[] = [];
  const ctx: HeartbeatContext = {
    info: { heartbeatTimeoutMs },
    heartbeat: (details?: unknown) => void beats.push({ at: Date.now(), details }),
  };
  return { ctx, beats };
}

describe('heartbeats of a long move', () => {
  it('keeps heartbeating the resume cursor while a step reports no progress', async () => {
    const { ctx, beats } = recordingContext(900);
    const result = await heartbeatWhile(ctx, { seq: 3 }, async () => {
      await sleep(1_100);
      return 'done';
    });
    assert.equal(result, 'done');
    assert.ok(beats.length >= 2, `${beats.length} heartbeats in 1.1 s with a 0.9 s timeout`);
    for (const b of beats) assert.deepEqual(b.details, { seq: 3 }, 'never a heartbeat without the cursor a retry resumes from');
  });

  it('heartbeats each progress report at once, and then its cursor on the timer', async () => {
    const { ctx, beats } = recordingContext(900);
    await heartbeatWhile(ctx, undefined, async (report: (c: { seq: number }) => void) => {
      report({ seq: 1 });
      assert.deepEqual(beats.at(-1)?.details, { seq: 1 });
      await sleep(800);
    });
    assert.ok(beats.length >= 2);
    for (const b of beats) assert.deepEqual(b.details, { seq: 1 });
  });

  it('stops after the stall limit, so that an attempt stuck for good misses its heartbeats and is retried', async () => {
    const { ctx, beats } = recordingContext(900);
    const start = Date.now();
    await heartbeatWhile(ctx, { seq: 0 }, () => sleep(1_600), 500);
    assert.ok(beats.length >= 1, 'kept alive within the limit');
    assert.ok(
      beats.every((b) => b.at - start < 900),
      'no heartbeat long after the limit',
    );
  });

  it('stops the timer when the move fails, and passes its error on', async () => {
    const { ctx, beats } = recordingContext(900);
    await assert.rejects(
      heartbeatWhile(ctx, undefined, async () => {
        await sleep(400);
        throw new Error('connection lost');
      }),
      /connection lost/,
    );
    const after = beats.length;
    await sleep(700);
    assert.equal(beats.length, after, 'no heartbeat after the attempt ended');
  });
});
