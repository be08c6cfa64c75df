/** What an actor shows in the Web UI, per state, without Temporal (workflows/actorDetails.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actorDetails, moveSummary, timerSummary } from '../../workflows/actorDetails';
import { initialState, LifecycleMachine, statusOf, type ActorState } from '../../workflows/lifecycleMachine';
import type { ArchiveManifest } from '../../src/shared/types';

const T0 = Date.parse('2027-03-06T14:00:05.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();

function actor(over: Partial<ActorState> = {}): ActorState {
  return { ...initialState('campaign', 'spring-sale'), name: 'Spring sale', tags: ['promo', 'spring'], ...over };
}

const manifest: ArchiveManifest = {
  kind: 'campaign',
  id: 'spring-sale',
  generation: 2,
  rowCount: 12_345,
  chunkCount: 4,
  compressedBytes: 3 * 1024 * 1024 + 200 * 1024,
  checksum: 'c'.repeat(64),
  store: 's3',
};

describe('actor details', () => {
  it('names the message, its tags and state; an active one has nothing scheduled and no restore line', () => {
    const text = actorDetails(actor());
    assert.match(text, /^\*\*Active\*\* · Campaign `spring-sale` · Spring sale — interaction data available\.\n\n/);
    assert.match(text, /\n\nTags: promo, spring$/);
    assert.match(text, /Nothing is scheduled/);
    assert.doesNotMatch(text, /interaction-data restore/);
  });

  it('held by the archiving pause: who paused it, why, that the data stays available, and when it looks again', () => {
    const s = actor({ state: 'stopped', stoppedAt: at(0), dueAt: at(300_000) });
    s.archivingHeld = { pausedBy: 'ops (token:7)', pausedAt: at(-60_000), reason: 'INC-42 *lag*', recheckAt: at(300_000) };
    const text = actorDetails(s);
    assert.match(text, /^\*\*Stopped\*\* · Campaign `spring-sale` · Spring sale — interaction data available\./);
    assert.match(text, /\*\*archiving is paused\*\* \(by ops \(token:7\) at 2027-03-06 13:59:05 UTC: INC-42 \\\*lag\\\*\)/);
    assert.match(text, /`interaction-data archiving resume`.*2027-03-06 14:05:05 UTC/);
    assert.equal(timerSummary(s), 'archiving paused: looks again 2027-03-06 14:05:05 UTC');
  });

  it('stopped: when it stopped, when it expires and what happens then', () => {
    const text = actorDetails(actor({ state: 'stopped', stoppedAt: at(0), dueAt: at(90 * 86_400_000) }));
    assert.match(text, /Stopped at 2027-03-06 14:00:05 UTC\. Expires at 2027-06-04 14:00:05 UTC: its references are counted then/);
  });

  it('retained: which audiences keep it, by type, name and id, how many more, and the next count', () => {
    const m = new LifecycleMachine(actor({ state: 'stopped', stoppedAt: at(0), dueAt: at(1000) }));
    const audiences = [
      { id: 'aud-1', type: 'segment', name: 'Openers of *Spring*' },
      { id: 'aud-2', type: 'content_card', name: null },
    ];
    assert.equal(m.referencesCounted(3, at(1000), at(2000), false, audiences), 'retained');
    const text = actorDetails(m.s);
    assert.match(text, /^\*\*Retained\*\* · Campaign `spring-sale` · Spring sale — interaction data available\./);
    assert.match(text, /Kept past its expiry by 3 active audiences filtering on it \(counted at 2027-03-06 14:00:06 UTC\)/);
    assert.match(text, /- segment \*\*Openers of \\\*Spring\\\*\*\* \(`aud-1`\)/, 'a name is shown as written, not as Markdown');
    assert.match(text, /- content card \*\*\(unnamed\)\*\* \(`aud-2`\)/);
    assert.match(text, /- and 1 more/);
    assert.match(text, /Counted again at 2027-03-06 14:00:07 UTC/);
    assert.deepEqual(statusOf(m.s).referencingAudiences, audiences, 'the status query lists them too');
    assert.equal(timerSummary(m.s), 'references counted again 2027-03-06 14:00:07 UTC');
  });

  it('expired: the last archive (rows, chunks, bytes, store, when), asleep or not, and the command that restores it', () => {
    const m = new LifecycleMachine(actor({ state: 'expired', generation: 2 }));
    m.archived(manifest, at(1000), true, at(0));
    const text = actorDetails(m.s);
    assert.match(text, /\*\*Expired\*\* · .* — interaction data not available\./);
    assert.match(text, /Asleep: late interactions wake it/);
    assert.match(text, /\*\*Last archive:\*\* generation 2: 12,345 rows in 4 chunks, 3\.2 MiB, store s3, done at 2027-03-06 14:00:05 UTC/);
    assert.match(text, /\*\*Restore:\*\* `interaction-data restore campaign:spring-sale --requested-by you@example\.com`/);
    assert.deepEqual(statusOf(m.s).referencingAudiences, [], 'no audience listed once it is not retained');
  });

  it('shows pending requests, the last restore and a problem with the command that retries', () => {
    const text = actorDetails(
      actor({
        state: 'restoring',
        generation: 3,
        pendingRestores: [{ requestId: 'r1', requestedBy: 'ops@example.com', requestedAt: at(0) }],
        lastRestore: { requestId: 'r0', requestedBy: '', requestedAt: at(0), completedAt: at(60_000), rowCount: 1 },
        problem: { activity: 'restoreInteractions', type: 'ChunkIntegrityError', error: 'checksum of chunk 3', since: at(5000) },
        inbox: [{ type: 'erase', request: { requestId: 'e1', userId: 'u1', erasedThrough: at(0), notifyWorkflowId: 'w' } }],
      }),
    );
    assert.match(text, /Being restored from generation 3\./);
    assert.match(text, /\*\*Pending:\*\* 1 restore request \(ops@example\.com\); 1 user erasure/);
    assert.match(text, /\*\*Last restore:\*\* requested by no one named at .*, done at 2027-03-06 14:01:05 UTC: 1 row/);
    assert.match(
      text,
      /\*\*Problem:\*\* `ChunkIntegrityError` in restoreInteractions since .*: checksum of chunk 3\. .*`interaction-data retry campaign:spring-sale`/,
    );
    assert.doesNotMatch(text, /\*\*Restore:\*\*/, 'no restore command while one runs');
  });

  it('summarises timers and moves in one line', () => {
    assert.equal(timerSummary(actor({ state: 'stopped', dueAt: '2027-06-04T00:00:00.000Z' })), 'expires 2027-06-04 00:00:00 UTC');
    assert.equal(moveSummary('archive', 3), 'archive generation 3');
    assert.equal(moveSummary('sweep', 3), 'sweep late interactions into generation 3');
    assert.equal(moveSummary('restore', 1), 'restore generation 1');
  });
});
