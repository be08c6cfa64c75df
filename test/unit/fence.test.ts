import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  activityAttemptToken,
  claimRefusal,
  fenceLockName,
  parseActivityToken,
  type HeldFence,
  type MoveAttempt,
} from '../../src/storage/fence';

const RUN = '5f0c8d1e-7a2b-4c3d-9e8f-0123456789ab';
const OTHER_RUN = '0e9d8c7b-6a5f-4e3d-8c2b-ba9876543210';
const token = (activityId: string, attempt: number, runId = RUN) =>
  activityAttemptToken({ workflowExecution: { runId }, activityId, attempt });
const held = (generation: number, phase: string, t: string): HeldFence => ({ generation, phase, token: t });
const claim = (generation: number, phase: MoveAttempt['phase'], t: string): MoveAttempt => ({ generation, phase, token: t });

describe('move fence: who may claim', () => {
  it('lets the first attempt claim a message no attempt holds', () => {
    assert.equal(claimRefusal(null, claim(1, 'archive', token('7', 1))), null);
  });

  it('lets attempt N+1 take over from attempt N, and refuses N once N+1 holds it', () => {
    assert.equal(claimRefusal(held(3, 'archive', token('7', 1)), claim(3, 'archive', token('7', 2))), null);
    assert.match(claimRefusal(held(3, 'archive', token('7', 2)), claim(3, 'archive', token('7', 1))) ?? '', /newer attempt/);
  });

  it('lets a later activity of the run (a sweep after the archive) take over, not an earlier one', () => {
    assert.equal(claimRefusal(held(3, 'archive', token('7', 4)), claim(3, 'archive', token('12', 1))), null);
    assert.match(claimRefusal(held(3, 'archive', token('12', 1)), claim(3, 'archive', token('7', 9))) ?? '', /newer attempt/);
  });

  it('compares activity ids as numbers, not text', () => {
    assert.match(claimRefusal(held(1, 'archive', token('10', 1)), claim(1, 'archive', token('9', 1))) ?? '', /newer attempt/);
  });

  it('lets the same attempt claim again', () => {
    assert.equal(claimRefusal(held(2, 'restore', token('9', 3)), claim(2, 'restore', token('9', 3))), null);
  });

  it('refuses an older generation, whatever its phase or run', () => {
    assert.match(claimRefusal(held(4, 'archive', token('2', 1)), claim(3, 'restore', token('50', 1))) ?? '', /generation 4 has begun/);
    assert.match(claimRefusal(held(4, 'archive', 'local:a'), claim(3, 'archive', 'local:b')) ?? '', /generation 4/);
  });

  it('lets a later generation claim over any attempt', () => {
    assert.equal(claimRefusal(held(4, 'restore', token('90', 1)), claim(5, 'archive', token('3', 1, OTHER_RUN))), null);
  });

  it('refuses an archive or sweep of a generation whose restore has begun, and lets the restore take over from its archive', () => {
    assert.match(
      claimRefusal(held(2, 'restore', token('20', 1)), claim(2, 'archive', token('30', 1))) ?? '',
      /the restore of generation 2 has begun/,
    );
    assert.equal(claimRefusal(held(2, 'archive', token('30', 1)), claim(2, 'restore', token('20', 1))), null);
  });

  it('lets the later claim win where attempts cannot be ordered: another run, or a token that is not an activity attempt', () => {
    assert.equal(claimRefusal(held(1, 'archive', token('40', 3)), claim(1, 'archive', token('5', 1, OTHER_RUN))), null);
    assert.equal(claimRefusal(held(1, 'archive', token('40', 3)), claim(1, 'archive', 'local:tests')), null);
    assert.equal(claimRefusal(held(1, 'archive', 'local:tests'), claim(1, 'archive', token('1', 1))), null);
  });

  it('takes any generation over the placeholder a first claim writes', () => {
    assert.equal(claimRefusal(held(0, 'archive', ''), claim(1, 'archive', token('1', 1))), null);
  });
});

describe('move fence: tokens and lock names', () => {
  it('parses what an activity attempt token is made of, run ids with slashes included', () => {
    assert.deepEqual(parseActivityToken(token('17', 3)), { run: RUN, activity: 17, attempt: 3 });
    assert.deepEqual(parseActivityToken('a/b/17/3'), { run: 'a/b', activity: 17, attempt: 3 });
    assert.equal(parseActivityToken('local:4b2e'), null);
    assert.equal(parseActivityToken(`${RUN}/archive-1/2`), null, 'a custom activity id is not ordered');
  });

  it('keeps a token within its column, unique still, when a custom activity id is long', () => {
    const long = token('x'.repeat(400), 1);
    assert.ok(long.length <= 255);
    assert.notEqual(long, token('x'.repeat(401), 1));
    assert.equal(parseActivityToken(long), null);
  });

  it("names a lock per message within MySQL's 64 characters, exact to the byte", () => {
    const names = [
      fenceLockName({ kind: 'campaign', id: 'big' }),
      fenceLockName({ kind: 'campaign', id: 'BIG' }),
      fenceLockName({ kind: 'canvas', id: 'big' }),
    ];
    assert.equal(new Set(names).size, 3);
    for (const n of names) assert.ok(n.length <= 64, n);
    assert.equal(fenceLockName({ kind: 'campaign', id: 'big' }), names[0]);
    assert.ok(fenceLockName({ kind: 'campaign', id: 'é'.repeat(64) }).length <= 64);
  });
});
