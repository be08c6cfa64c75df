/**
 * Records the event history of one full lifecycle (stop → retained → expired → restore → stopped) into
 * test/histories/, for the replay test. Re-record only on purpose, when a workflow change is meant to
 * be incompatible and is shipped behind a new workflow type or a patch.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureTemporalBinary } from './ensureTemporal';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import type { MessageRef } from '../src/shared/types';
import { createStack, seedInteractions, waitForState } from '../test/support/stack';

async function main(): Promise<void> {
  const stack = await createStack({ ttl: '2 seconds', cleanupInterval: '2 seconds', chunkRows: 100 });
  try {
    await stack.startWorker();
    const ref: MessageRef = { kind: 'campaign', id: 'recorded' };
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: 'Recorded campaign' });
    await stack.db('message_tags').insert({ kind: ref.kind, message_id: ref.id, tag: 'recorded' });
    await seedInteractions(stack.db, ref, 350);
    await stack.db('audiences').insert({ id: 'seg', type: 'segment', active: true });
    await stack.db('audience_filters').insert({ audience_id: 'seg', filter_type: 'received_message_from_campaign', target_kind: ref.kind, target_id: ref.id });
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'retained');
    await stack.db('audiences').where({ id: 'seg' }).update({ active: false });
    await stack.lifecycle.referencesChanged(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired');
    await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'recorder@example.com', requestId: 'recorded-restore' });
    await waitForState(stack, ref, 'stopped');
    await stack.lifecycle.resume(ref.kind, ref.id);
    await waitForState(stack, ref, 'active');
    // The CLI's JSON is the format the Web UI downloads and historyFromJSON reads.
    const json = execFileSync(await ensureTemporalBinary(), [
      'workflow', 'show', '--output', 'json',
      '--workflow-id', lifecycleWorkflowId(ref),
      '--address', stack.env.TEMPORAL_ADDRESS,
      '--namespace', stack.env.TEMPORAL_NAMESPACE,
    ]).toString('utf8');
    const file = path.join(__dirname, '..', 'test', 'histories', 'full-cycle.json');
    writeFileSync(file, json);
    console.log(`recorded ${(JSON.parse(json) as { events: unknown[] }).events.length} events to ${path.relative(process.cwd(), file)}`);
  } finally {
    await stack.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
