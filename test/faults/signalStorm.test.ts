/**
 * Random stop, resume, restore and referencesChanged signals to one actor (seeded, printed). After each
 * signal the actor is left to settle, then its state must be the one the rules give, computed by a
 * model of the rules alone, and its data must be intact wherever the state says it is: hot and equal
 * to the original rows while available, in long-term storage and equal to them while expired.
 *
 * Time is part of the rules (a stopped message expires at stoppedAt + TTL; a stop dated before the
 * latest resume is out of order and ignored), so the model keeps, for every instant the actor stamps
 * itself, the window in which it must lie (between sending the signal and seeing it applied), and the
 * test never acts while an outcome could still go either way: it waits until a pending deadline has
 * surely passed, and dates stops well clear of the latest resume. Time also passes at random between
 * signals, so that deadlines fall, data is archived, retained and restored during the storm.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { referencesChangedSignal, restoreSignal, resumeSignal, stopSignal } from '../../workflows/definitions';
import type { LifecycleState, LifecycleStatus, MessageRef } from '../../src/shared/types';
import { lifecycleWorkflowId } from '../../src/shared/workflowId';
import { createStack, seedInteractions, sleep, type TestStack } from '../support/stack';
import { archivedFingerprint, bySize, hotFingerprint, hotRowCount, reporter, seededRandom, type Random } from './support';

const SIGNALS = bySize({ short: 30, full: 100 });
const ROWS = 2_000;
const TTL_MS = 6_000;
/** Clear of scheduling jitter on a loaded machine: no decision is taken closer than this to a boundary. */
const MARGIN_MS = 2_500;
/**
 * Chance that time passes before a signal. Signals follow one another in a fraction of a second, far
 * faster than any deadline, and a stop dated TTL ago is older than a recent resume (so ignored): without
 * pauses the storm would hardly leave active and stopped, and seldom archive, retain or restore.
 */
const PAUSE_CHANCE = 0.2;

type Action =
  | { type: 'stop'; when: 'now' | 'due' }
  | { type: 'resume' }
  | { type: 'restore'; requestId: string }
  | { type: 'referencesChanged'; referenced: boolean };

type ModelState = Extract<LifecycleState, 'active' | 'stopped' | 'retained' | 'expired'>;

/** An instant the actor took from its own clock: somewhere between `from` and `to` (test clock, ms). */
interface Window {
  from: number;
  to: number;
}

interface Model {
  state: ModelState;
  referenced: boolean;
  seenRestoreIds: Set<string>;
  /** When the actor last applied a resume. */
  lastResume: Window | null;
  /** While stopped: when the deadline falls. */
  due: Window | null;
}

type Outcome = { state: ModelState; refused: 'resume' | 'restore' | null; due: Window | null };

/** What the deadline passing does: look for references, then retain or archive. */
const atDeadline = (m: Model): ModelState => (m.referenced ? 'retained' : 'expired');

/**
 * The rules, and nothing else: the state after `a` (sent at `sent`, seen applied by `applied`), and
 * whether the actor refuses it. `stoppedAt` is the instant a stop carries.
 */
function applyRules(m: Model, a: Action, sent: number, applied: number, stoppedAt: number | null): Outcome {
  const keep: Outcome = { state: m.state, refused: null, due: m.due };
  switch (a.type) {
    case 'stop': {
      if (m.state !== 'active') return keep; // a duplicate stop changes nothing
      // Out of order: dated before the latest resume (the test keeps this unambiguous, see pickAction).
      if (stoppedAt !== null && m.lastResume && stoppedAt < m.lastResume.from) return keep;
      if (a.when === 'due') return { state: atDeadline(m), refused: null, due: null };
      return { state: 'stopped', refused: null, due: { from: sent + TTL_MS, to: applied + TTL_MS } };
    }
    case 'resume':
      if (m.state === 'stopped' || m.state === 'retained') return { state: 'active', refused: null, due: null };
      return { ...keep, refused: m.state === 'expired' ? 'resume' : null };
    case 'restore':
      if (m.seenRestoreIds.has(a.requestId)) return keep; // a duplicate is harmless
      // Restored data is stopped again with a full TTL from the restore's completion.
      if (m.state === 'expired') return { state: 'stopped', refused: null, due: { from: sent + TTL_MS, to: applied + TTL_MS } };
      return { ...keep, refused: 'restore' };
    case 'referencesChanged':
      // Only a retained message looks again at once; the others look at their deadline.
      if (m.state === 'retained' && !a.referenced) return { state: 'expired', refused: null, due: null };
      return keep;
  }
}

function pickAction(r: Random, m: Model, n: number): Action {
  const roll = r.next();
  if (roll < 0.17) return { type: 'stop', when: 'now' };
  if (roll < 0.35) return { type: 'stop', when: 'due' };
  if (roll < 0.55) return { type: 'resume' };
  if (roll < 0.72) return { type: 'restore', requestId: `storm-${n}` };
  if (roll < 0.78 && m.seenRestoreIds.size > 0) return { type: 'restore', requestId: r.pick([...m.seenRestoreIds]) };
  return { type: 'referencesChanged', referenced: r.next() < 0.5 };
}

/**
 * The stoppedAt of a stop that is due at once: TTL (and a margin) ago. If that would fall inside the
 * window of the latest resume, where the actor could take it either way, it is moved clear before it.
 */
function dueStoppedAt(m: Model, now: number): number {
  let at = now - TTL_MS - MARGIN_MS;
  if (m.lastResume && at >= m.lastResume.from - MARGIN_MS && at <= m.lastResume.to + MARGIN_MS) at = m.lastResume.from - MARGIN_MS;
  return at;
}

describe('signal storm on one actor', () => {
  let stack: TestStack;

  before(async () => {
    stack = await createStack({ ttl: `${TTL_MS / 1000} seconds`, cleanupInterval: '1 hour', chunkRows: 500 });
    await stack.startWorker();
  });
  after(async () => stack?.close());

  it(
    `${SIGNALS} random signals: the state follows the rules and the data stays intact`,
    { timeout: bySize({ short: 6, full: 20 }) * 60_000 },
    async (t) => {
      const say = reporter((m) => t.diagnostic(m));
      const rnd = seededRandom('signal storm', say);
      const ref: MessageRef = { kind: 'canvas', id: 'stormy' };
      await seedInteractions(stack.db, ref, ROWS);
      const original = await hotFingerprint(stack.db, ref);
      const audience = 'storm-segment';
      await stack.db('audiences').insert({ id: audience, type: 'segment', name: 'storm', active: true });

      const setReferenced = async (on: boolean) => {
        await stack.db('audience_filters').where({ audience_id: audience }).delete();
        if (on)
          await stack
            .db('audience_filters')
            .insert({ audience_id: audience, filter_type: 'entered_canvas_variation', target_kind: ref.kind, target_id: ref.id });
      };

      // The actor exists (active) before the storm.
      await stack.lifecycle.referencesChanged(ref.kind, ref.id);
      const handle = stack.client.workflow.getHandle(lifecycleWorkflowId(ref));

      /** Idle: no workflow task or activity pending (e-mails included), twice in a row. */
      const settle = async (): Promise<LifecycleStatus> => {
        let quiet = 0;
        for (let i = 0; i < 1_200; i++) {
          const d = await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).describe();
          const busy = (d.raw.pendingActivities?.length ?? 0) > 0 || !!d.raw.pendingWorkflowTask || d.status.name !== 'RUNNING';
          quiet = busy ? 0 : quiet + 1;
          if (quiet >= 2) {
            const s = await stack.lifecycle.status(ref.kind, ref.id);
            if (s && s.state !== 'archiving' && s.state !== 'restoring') return s;
          }
          await sleep(100);
        }
        throw new Error('the actor did not settle within two minutes');
      };

      const model: Model = { state: 'active', referenced: false, seenRestoreIds: new Set(), lastResume: null, due: null };
      let status = await settle();
      const trace: string[] = [];
      const counts: Record<string, number> = {};
      let deadlinesPassed = 0;
      let pauses = 0;
      const reached = new Set<ModelState>([model.state]);

      const checkData = async (n: number, state: ModelState) => {
        if (state === 'expired') {
          assert.equal(await hotRowCount(stack.db, ref), 0, `no hot rows while expired (signal ${n})`);
          assert.deepEqual(
            await archivedFingerprint(stack.db, ref, status.archive?.generation ?? -1, stack.stores),
            original,
            `archive intact (signal ${n})`,
          );
        } else {
          assert.deepEqual(await hotFingerprint(stack.db, ref), original, `hot rows intact (signal ${n})`);
        }
      };

      for (let n = 1; n <= SIGNALS; n++) {
        // Time passes: up to the pending deadline (acted on just below), or, with none pending, until a
        // stop dated TTL ago is no longer older than the latest resume.
        if (rnd.next() < PAUSE_CHANCE) {
          const until =
            model.state === 'stopped' && model.due
              ? model.due.from - MARGIN_MS
              : (model.lastResume?.to ?? 0) + TTL_MS + 2 * MARGIN_MS + 100;
          if (until > Date.now()) {
            pauses += 1;
            trace.push(`${n}. (time passes: ${((until - Date.now()) / 1000).toFixed(1)} s)`);
            await sleep(until - Date.now());
          }
        }
        // A deadline close by or passed: wait until it has surely passed and the actor has acted on it.
        if (model.state === 'stopped' && model.due && Date.now() >= model.due.from - MARGIN_MS) {
          await sleep(Math.max(0, model.due.to + MARGIN_MS - Date.now()));
          status = await settle();
          const next = atDeadline(model);
          trace.push(`${n}. (deadline passes): stopped → ${next} (actor: ${status.state})`);
          assert.equal(status.state, next, `at the deadline before signal ${n}; seed ${rnd.seed}\n${trace.slice(-10).join('\n')}`);
          model.state = next;
          model.due = null;
          reached.add(next);
          deadlinesPassed += 1;
          await checkData(n, next);
        }

        const action = pickAction(rnd, model, n);
        const label =
          action.type === 'stop'
            ? `stop(${action.when})`
            : action.type === 'restore'
              ? `restore(${action.requestId})`
              : action.type === 'referencesChanged'
                ? `referencesChanged(${action.referenced ? 'referenced' : 'unreferenced'})`
                : 'resume';
        counts[action.type] = (counts[action.type] ?? 0) + 1;
        const refusalBefore = status.lastRefusal?.at ?? null;
        const sent = Date.now();
        let stoppedAt: number | null = null;
        switch (action.type) {
          case 'stop':
            if (action.when === 'due') stoppedAt = dueStoppedAt(model, sent);
            await handle.signal(stopSignal, stoppedAt === null ? {} : { stoppedAt: new Date(stoppedAt).toISOString() });
            break;
          case 'resume':
            await handle.signal(resumeSignal, {});
            break;
          case 'restore':
            await handle.signal(restoreSignal, { requestedBy: 'storm@example.com', requestId: action.requestId });
            break;
          case 'referencesChanged':
            await setReferenced(action.referenced);
            await handle.signal(referencesChangedSignal, {});
            break;
        }
        if (action.type === 'referencesChanged') model.referenced = action.referenced;
        status = await settle();
        const applied = Date.now();
        const expected = applyRules(model, action, sent, applied, stoppedAt);
        if (action.type === 'restore') model.seenRestoreIds.add(action.requestId);
        if (action.type === 'resume' && expected.state === 'active' && model.state !== 'active')
          model.lastResume = { from: sent, to: applied };
        trace.push(`${n}. ${label}: ${model.state} → ${expected.state} (actor: ${status.state})`);
        model.state = expected.state;
        model.due = expected.due;
        reached.add(expected.state);
        assert.equal(status.state, expected.state, `after signal ${n} (${label}); seed ${rnd.seed}\n${trace.slice(-10).join('\n')}`);
        if (expected.refused) {
          assert.equal(status.lastRefusal?.signal, expected.refused, `signal ${n} (${label}) refused`);
          assert.notEqual(status.lastRefusal?.at ?? null, refusalBefore, `signal ${n} (${label}) refused just now`);
        }
        await checkData(n, expected.state);
      }
      const archives = Number(
        (
          await stack
            .db('archive_manifests')
            .where({ message_kind: ref.kind, message_id: ref.id })
            .max<{ g: number | null }[]>('generation as g')
        )[0]?.g ?? 0,
      );
      say(
        `signals sent: ${Object.entries(counts)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}; pauses ${pauses}; deadlines passed between signals: ${deadlinesPassed}`,
      );
      say(`archives: ${archives}; states reached: ${[...reached].sort().join(', ')}; final state ${status.state}`);
      say(`last signals:\n${trace.slice(-5).join('\n')}`);
    },
  );
});
