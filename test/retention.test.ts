/** Rule 3 and 4: an active filter on this specific message retains its data; tag filters never do. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MessageRef } from '../src/shared/types';
import { createStack, hotRows, seedInteractions, waitForState, waitUntilSettled, type TestStack } from './support/stack';

describe('retention by retargeting references', () => {
  let stack: TestStack;

  before(async () => {
    // A long cleanup interval: only a referencesChanged signal can make a retained message expire quickly.
    stack = await createStack({ ttl: '2 seconds', cleanupInterval: '1 hour' });
    await stack.startWorker();
  });
  after(async () => stack?.close());

  async function addAudience(
    id: string,
    type: string,
    active: boolean,
    filters: { filter_type: string; target?: MessageRef; tag?: string }[],
  ) {
    await stack.db('audiences').insert({ id, type, name: id, active });
    await stack.db('audience_filters').insert(
      filters.map((f) => ({
        audience_id: id,
        filter_type: f.filter_type,
        target_kind: f.target?.kind ?? null,
        target_id: f.target?.id ?? null,
        tag: f.tag ?? null,
      })),
    );
  }

  it('stays retained while an active campaign filters on it, and expires once the reference goes', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'referenced' };
    await seedInteractions(stack.db, ref, 300);
    await addAudience('retargeting-campaign', 'campaign', true, [{ filter_type: 'received_message_from_campaign', target: ref }]);
    await stack.lifecycle.stop(ref.kind, ref.id);
    const retained = await waitForState(stack, ref, 'retained', 20_000);
    assert.equal(retained.available, true);
    assert.equal(retained.activeReferences, 1);
    const nextCheck = Date.parse(retained.expiresAt!);
    assert.ok(nextCheck - Date.parse(retained.lastCheckedAt!) === 3_600_000, 'reported expiry is the next cleanup run');
    // Nothing in flight and the next look an hour away: it stays as it is.
    await waitUntilSettled(stack, ref);
    assert.equal((await stack.lifecycle.status(ref.kind, ref.id))?.state, 'retained');
    assert.equal((await hotRows(stack.db, ref)).length, 300);

    // Deactivating the audience is a reference change: the actor looks again at once.
    await stack.db('audiences').where({ id: 'retargeting-campaign' }).update({ active: false });
    await stack.lifecycle.referencesChanged(ref.kind, ref.id);
    const expired = await waitForState(stack, ref, 'expired', 20_000);
    assert.equal(expired.archive?.rowCount, 300);
    assert.equal((await hotRows(stack.db, ref)).length, 0);
  });

  it('a segment, Canvas or Content Card filtering on a Canvas retains it too', async () => {
    const ref: MessageRef = { kind: 'canvas', id: 'referenced-canvas' };
    await addAudience('card', 'content_card', true, [{ filter_type: 'received_message_from_canvas_step', target: ref }]);
    await stack.lifecycle.stop(ref.kind, ref.id);
    const retained = await waitForState(stack, ref, 'retained', 20_000);
    assert.equal(retained.activeReferences, 1);
    await stack.db('audience_filters').where({ audience_id: 'card' }).delete();
    await stack.lifecycle.referencesChanged(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired', 20_000);
  });

  it('filters by tag and inactive audiences do not retain', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'tagged-only' };
    await stack.db('message_tags').insert({ kind: ref.kind, message_id: ref.id, tag: 'newsletter' });
    await seedInteractions(stack.db, ref, 50);
    await addAudience('tag-segment', 'segment', true, [
      { filter_type: 'received_message_with_tag', tag: 'newsletter' },
      { filter_type: 'clicked_opened_with_tag', tag: 'newsletter' },
      { filter_type: 'last_received_message_with_tag', tag: 'newsletter' },
    ]);
    await addAudience('paused-canvas', 'canvas', false, [{ filter_type: 'clicked_opened_campaign', target: ref }]);
    await stack.lifecycle.stop(ref.kind, ref.id);
    const expired = await waitForState(stack, ref, 'expired', 20_000);
    assert.equal(expired.activeReferences, 0);
    assert.equal(expired.archive?.rowCount, 50);
  });

  it('a reference added while stopped is seen at the deadline', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'late-reference' };
    const stoppedAt = new Date().toISOString();
    await stack.lifecycle.stop(ref.kind, ref.id, { stoppedAt });
    // Added straight after the stop, well inside the 2 s before the deadline (waiting to see the actor
    // report 'stopped' first could take longer than that on a loaded machine).
    await addAudience('late-segment', 'segment', true, [{ filter_type: 'in_campaign_control_group', target: ref }]);
    const addedAt = Date.now();
    assert.ok(addedAt < Date.parse(stoppedAt) + 2_000, 'the reference was added before the deadline');
    const retained = await waitForState(stack, ref, 'retained', 20_000);
    assert.equal(retained.activeReferences, 1);
    assert.equal(retained.stoppedAt, stoppedAt);
  });
});
