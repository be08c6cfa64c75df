/**
 * What an operator sees of an actor in the Temporal Web UI, read the way the UI reads it: the static
 * summary and details of the execution, the current details (the `__temporal_workflow_metadata`
 * query), and the summaries of its timers and activities in its history.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { MessageRef } from '../src/shared/types';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import { createStack, seedInteractions, waitFor, waitForState, type TestStack } from './support/stack';

describe('the actor in the Web UI', () => {
  let stack: TestStack;

  before(async () => {
    stack = await createStack({ ttl: '2 seconds', cleanupInterval: '1 hour' });
    await stack.startWorker();
  });
  after(async () => stack?.close());

  const handle = (ref: MessageRef): WorkflowHandle => stack.client.workflow.getHandle(lifecycleWorkflowId(ref));

  async function currentDetails(ref: MessageRef): Promise<string> {
    const metadata = await handle(ref).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    return metadata.currentDetails ?? '';
  }

  /** The one-line summaries the timers and activities of every run of the actor carry. */
  async function summaries(ref: MessageRef): Promise<string[]> {
    const out: string[] = [];
    const workflowId = lifecycleWorkflowId(ref);
    for await (const run of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      for (const event of (await stack.client.workflow.getHandle(workflowId, run.runId).fetchHistory()).events ?? []) {
        const summary = event.userMetadata?.summary;
        if (!summary) continue;
        const what = event.timerStartedEventAttributes ? 'timer' : (event.activityTaskScheduledEventAttributes?.activityType?.name ?? '?');
        out.push(`${what}: ${defaultPayloadConverter.fromPayload<string>(summary)}`);
      }
    }
    return out;
  }

  it('tells why a message is retained, when it moves, what was archived and how to restore it', async () => {
    const ref: MessageRef = { kind: 'campaign', id: 'told' };
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: 'Spring sale' });
    await stack.db('message_tags').insert({ kind: ref.kind, message_id: ref.id, tag: 'promo' });
    await seedInteractions(stack.db, ref, 120);
    await stack.db('audiences').insert({ id: 'aud-openers', type: 'segment', name: 'Openers of Spring sale', active: true });
    await stack.db('audience_filters').insert({
      audience_id: 'aud-openers',
      filter_type: 'clicked_opened_campaign',
      target_kind: ref.kind,
      target_id: ref.id,
    });

    await stack.lifecycle.stop(ref.kind, ref.id);
    const description = await handle(ref).describe();
    assert.equal(await description.staticSummary(), 'Interaction data of campaign told');
    assert.match((await description.staticDetails()) ?? '', /Campaign `told`.*Current details/);

    const retained = await waitForState(stack, ref, 'retained', 20_000);
    assert.deepEqual(retained.referencingAudiences, [{ id: 'aud-openers', type: 'segment', name: 'Openers of Spring sale' }]);
    const why = await waitFor('the details to say why', async () => {
      const text = await currentDetails(ref);
      return text.includes('Retained') ? text : null;
    });
    assert.match(why, /^\*\*Retained\*\* · Campaign `told` · Spring sale — interaction data available\./);
    assert.match(why, /Kept past its expiry by 1 active audience filtering on it/);
    assert.match(why, /\n\nTags: promo$/);
    assert.match(why, /- segment \*\*Openers of Spring sale\*\* \(`aud-openers`\)/);
    assert.match(why, new RegExp(`Counted again at ${retained.expiresAt!.slice(0, 10)} `));

    await stack.db('audiences').where({ id: 'aud-openers' }).update({ active: false });
    await stack.lifecycle.referencesChanged(ref.kind, ref.id);
    const expired = await waitForState(stack, ref, 'expired', 20_000);
    const archived = await waitFor('the details to show the archive', async () => {
      const text = await currentDetails(ref);
      return text.includes('Last archive') ? text : null;
    });
    assert.match(archived, /^\*\*Expired\*\* · Campaign `told` · Spring sale — interaction data not available\./);
    assert.match(
      archived,
      new RegExp(
        `\\*\\*Last archive:\\*\\* generation 1: 120 rows in ${expired.archive!.chunkCount} chunks?, .*store (s3|mysql), done at `,
      ),
    );
    assert.match(archived, /`interaction-data restore campaign:told --requested-by you@example\.com`/);

    await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'ops@example.com' });
    await waitForState(stack, ref, 'stopped', 30_000);
    const restored = await waitFor('the details to show the restore', async () => {
      const text = await currentDetails(ref);
      return text.includes('Last restore') ? text : null;
    });
    assert.match(restored, /\*\*Last restore:\*\* requested by ops@example\.com at .*: 120 rows/);

    const lines = await summaries(ref);
    assert.ok(lines.includes('expireMessage: archive generation 1'), lines.join('\n'));
    assert.ok(lines.includes('restoreInteractions: restore generation 1'), lines.join('\n'));
    assert.ok(
      lines.some((l) => /^timer: references counted again \d{4}-\d\d-\d\d /.test(l)),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => /^timer: expires \d{4}-\d\d-\d\d /.test(l)),
      lines.join('\n'),
    );
  });
});
