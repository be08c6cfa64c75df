/** The actor's transitions without Temporal: each row of LifecycleMachine's transition table. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ACTOR_STATE_VERSION,
  initialState,
  LifecycleMachine,
  statusOf,
  upgradeCarried,
  type ActorState,
} from '../../workflows/lifecycleMachine';
import { RESUME_REFUSED_MESSAGE, type PendingRestore } from '../../src/shared/types';

const T0 = Date.parse('2027-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();

function machine(over: Partial<ActorState> = {}): LifecycleMachine {
  return new LifecycleMachine({ ...initialState('campaign', 'spring'), ...over });
}

const request = (requestId: string, requestedBy = 'ops@example.com'): PendingRestore => ({ requestId, requestedBy, requestedAt: at(0) });

describe('LifecycleMachine', () => {
  it('active → stop → stopped, with the deadline it is given; a second stop changes nothing', () => {
    const m = machine();
    assert.equal(m.stop(at(0), at(1000)), true);
    assert.equal(m.s.state, 'stopped');
    assert.equal(m.s.dueAt, at(1000));
    assert.equal(m.stop(at(5), at(2000)), false);
    assert.equal(m.s.dueAt, at(1000));
  });

  it('a stop older than the latest resume changes nothing (out of order)', () => {
    const m = machine({ lastResumedAt: at(100) });
    assert.equal(m.stopApplies(at(50)), false);
    assert.equal(m.stopApplies(at(150)), true);
  });

  it('waits until the deadline, then counts references', () => {
    const m = machine({ state: 'stopped', dueAt: at(1000) });
    assert.deepEqual(m.nextStep(T0), { type: 'wait', until: at(1000) });
    assert.deepEqual(m.nextStep(T0 + 1000), { type: 'checkReferences' });
  });

  it('referenced at the deadline → retained until the next check; a reference change wakes it', () => {
    const m = machine({ state: 'stopped', dueAt: at(1000) });
    assert.equal(m.referencesCounted(2, at(1000), at(5000), false), 'retained');
    assert.equal(m.s.state, 'retained');
    assert.equal(m.s.dueAt, at(5000));
    assert.equal(m.wakes(), false);
    m.referencesChanged();
    assert.equal(m.wakes(), true);
    assert.deepEqual(m.nextStep(T0 + 2000), { type: 'checkReferences' });
  });

  it('unreferenced at the deadline → archiving, a new generation, no deadline', () => {
    const m = machine({ state: 'retained', dueAt: at(1000), generation: 3 });
    assert.equal(m.referencesCounted(0, at(1000), '', false), 'archiving');
    assert.equal(m.s.state, 'archiving');
    assert.equal(m.s.generation, 4);
    assert.equal(m.s.dueAt, null);
    assert.deepEqual(m.nextStep(T0), { type: 'archive' });
  });

  it('unreferenced while archiving is paused → held: data kept available until the recheck; resuming archiving wakes it', () => {
    const m = machine({ state: 'retained', dueAt: at(1000), generation: 2 });
    const hold = { pausedBy: 'ops', pausedAt: at(500), reason: 'INC-1', recheckAt: at(61_000) };
    assert.equal(m.referencesCounted(0, at(1000), at(5000), false, [], hold), 'held');
    assert.equal(m.s.state, 'stopped');
    assert.equal(m.s.generation, 2, 'no generation begun');
    assert.equal(m.s.dueAt, hold.recheckAt);
    assert.deepEqual(statusOf(m.s).archivingHeld, hold);
    assert.equal(statusOf(m.s).available, true);
    assert.deepEqual(m.nextStep(T0 + 2000), { type: 'wait', until: hold.recheckAt });
    m.referencesChanged();
    assert.equal(m.wakes(), true, 'the resume wakes it before the recheck');
    assert.deepEqual(m.nextStep(T0 + 2000), { type: 'checkReferences' });
    assert.equal(m.referencesCounted(0, at(2000), at(6000), false, [], null), 'archiving');
    assert.equal(m.s.archivingHeld, null);
    assert.equal(statusOf(m.s).archivingHeld, null);
  });

  it('a plain stopped actor is not woken by a reference change (only a retained or held one is)', () => {
    const m = machine({ state: 'stopped', dueAt: at(1000) });
    m.referencesChanged();
    assert.equal(m.wakes(), false);
  });

  it('a resume queued when the count comes back wins over the expiry', () => {
    const m = machine({ state: 'stopped', dueAt: at(1000), generation: 1 });
    m.s.inbox.push({ type: 'resume', receivedAt: at(1001) });
    assert.equal(m.referencesCounted(0, at(1001), '', m.hasQueuedResume()), 'resume-first');
    assert.equal(m.s.state, 'stopped');
    assert.equal(m.s.generation, 1, 'nothing archived');
    assert.equal(m.nextStep(T0 + 2000).type, 'apply');
    assert.deepEqual(m.resume(at(1001)), { ok: true, value: true });
    assert.equal(m.s.state, 'active');
  });

  it('resume: stopped or retained → active; active → unchanged; unavailable → refused with rule 9 words', () => {
    assert.deepEqual(machine({ state: 'retained' }).resume(at(0)), { ok: true, value: true });
    assert.deepEqual(machine().resume(at(0)), { ok: true, value: false });
    for (const state of ['archiving', 'expired', 'restoring'] as const) {
      const m = machine({ state });
      assert.equal(m.resumeRefusal(), RESUME_REFUSED_MESSAGE.campaign);
      assert.deepEqual(m.resume(at(0)), { ok: false, reason: RESUME_REFUSED_MESSAGE.campaign });
      assert.equal(m.s.state, state);
      assert.equal(m.s.lastRefusal?.signal, 'resume');
    }
  });

  it('restore: queued while unavailable, already available otherwise, a duplicate id changes nothing', () => {
    const expired = machine({ state: 'expired', dueAt: at(1000) });
    assert.equal(expired.requestRestore(request('r1')), 'accepted');
    assert.equal(expired.requestRestore(request('r1')), 'duplicate');
    assert.equal(expired.s.pendingRestores.length, 1);
    assert.deepEqual(expired.nextStep(T0), { type: 'restore' });
    assert.equal(machine({ state: 'stopped' }).requestRestore(request('r2')), 'already_available');
    const moving = machine({ state: 'archiving' });
    assert.equal(moving.requestRestore(request('r3')), 'accepted', 'served after the archive');
  });

  it('expired: sweeps at each deadline; a restore request wakes it', () => {
    const m = machine({ state: 'expired', dueAt: at(1000) });
    assert.deepEqual(m.nextStep(T0), { type: 'wait', until: at(1000) });
    assert.deepEqual(m.nextStep(T0 + 1000), { type: 'sweep' });
    m.requestRestore(request('r1'));
    assert.equal(m.wakes(), true);
  });

  it('expired with no hot table left: asleep without a timer until late interactions, then sweeps no sooner than the interval', () => {
    const manifest = { rowCount: 3, chunkCount: 1, checksum: 'c', compressedBytes: 10 } as never;
    const m = machine({ state: 'expired' });
    m.archived(manifest, at(1000), true);
    assert.deepEqual(m.nextStep(T0 + 5000), { type: 'wait', until: null }, 'no deadline: no timer, however late');
    assert.equal(m.wakes(), false);
    // Woken before the interval has passed since the last sweep: sweeps when it has.
    assert.equal(m.lateInteractions(at(400)), true);
    assert.deepEqual(m.nextStep(T0 + 400), { type: 'wait', until: at(1000) });
    assert.deepEqual(m.nextStep(T0 + 1000), { type: 'sweep' });
    // A sweep that left a table keeps a timer; one that left none sleeps again.
    m.archived(manifest, at(2000), false);
    assert.deepEqual(m.nextStep(T0 + 1500), { type: 'wait', until: at(2000) });
    m.archived(manifest, at(3000), true);
    assert.equal(m.lateInteractions(at(5000)), true);
    assert.deepEqual(m.nextStep(T0 + 5000), { type: 'sweep' }, 'woken after the interval: sweeps at once');
    // Late interactions change nothing for an actor that is not asleep.
    assert.equal(machine({ state: 'stopped', dueAt: at(9) }).lateInteractions(at(0)), false);
    assert.equal(m.lateInteractions(at(6000)), false);
    // A restore request still wakes an asleep actor.
    const asleep = machine({ state: 'expired', asleep: true });
    assert.deepEqual(asleep.nextStep(T0), { type: 'wait', until: null });
    asleep.requestRestore(request('r2'));
    assert.deepEqual(asleep.nextStep(T0), { type: 'restore' });
  });

  it('restored → served requests, one e-mail per requester, another full TTL', () => {
    const m = machine({ state: 'restoring', pendingRestores: [request('a', 'a@example.com'), request('b', '')] });
    const { served, emails } = m.restored({ generation: 1, rowCount: 42, chunkCount: 1 }, at(10), at(5000));
    assert.deepEqual(
      served.map((r) => r.requestId),
      ['a', 'b'],
    );
    assert.deepEqual(
      emails.map((e) => [e.to, e.rowCount]),
      [['a@example.com', 42]],
    );
    assert.equal(m.s.pendingRestores.length, 0);
    assert.equal(m.s.dueAt, at(5000));
    assert.equal(m.s.lastRestore?.requestId, 'b');
  });

  it('a step that fails for good sets a problem, tells restore requesters once, and waits for retry', () => {
    const m = machine({ state: 'restoring', pendingRestores: [request('a', 'a@example.com')] });
    const problem = { activity: 'restoreInteractions', type: 'ChunkIntegrityError', error: 'checksum', since: at(0) };
    assert.equal(m.failed(problem).emails.length, 1);
    assert.equal(m.failed(problem).emails.length, 0, 'told once per problem');
    assert.equal(
      m.problemNotice(request('late', 'late@example.com'))?.failure,
      'ChunkIntegrityError: checksum',
      'a later requester is told too',
    );
    assert.deepEqual(m.nextStep(T0), { type: 'wait', until: null });
    assert.equal(statusOf(m.s).problem?.type, 'ChunkIntegrityError');
    assert.equal(m.retry(), true);
    assert.deepEqual(m.nextStep(T0), { type: 'restore' });
    assert.equal(m.retry(), false);
  });

  it('a state carried by a run before version 2 is upgraded', () => {
    const old = { ...initialState('canvas', 'x') } as Partial<ActorState>;
    delete old.version;
    delete old.problem;
    const s = upgradeCarried(old as ActorState);
    assert.equal(s.version, ACTOR_STATE_VERSION);
    assert.equal(s.problem, null);
  });
});
