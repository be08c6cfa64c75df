/** The pauses between a move's chunks (src/storage/moveThrottle.ts), without a database. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffMs, niceSleepMs } from '../../src/storage/moveThrottle';

describe('move throttle', () => {
  it('backs off from 100 ms, doubling, up to its limit', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 50].map((w) => backoffMs(w, 5_000)),
      [100, 200, 400, 800, 1600, 3200, 5000, 5000],
    );
  });

  it('sleeps the nice ratio of the chunk time, never below 0 nor above a minute', () => {
    assert.equal(niceSleepMs(200, 0.5), 100);
    assert.equal(niceSleepMs(200, 0), 0);
    assert.equal(niceSleepMs(-5, 1), 0);
    assert.equal(niceSleepMs(10 * 60_000, 1), 60_000);
  });
});
