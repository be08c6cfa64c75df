/**
 * Records event histories of both workflows into test/histories/, for the replay test:
 *   lifecycle-<label>.json     one full lifecycle (stop → retained → expired → a refused resume →
 *                              restore → stopped → resume → active)
 *   bulk-restore-<label>.json  a bulk restore of two expired campaigns by tag
 *
 *   npm run test:record-history -- <label>
 *
 * Record on purpose, with the code of a release, before a workflow change: the replay test then proves
 * the change replays what that code recorded (docs/WORKFLOWS.md).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureTemporalBinary } from './ensureTemporal';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import type { MessageRef } from '../src/shared/types';
import { BulkRestoreClient } from '../src/client/bulkRestoreClient';
import { createStack, seedInteractions, waitForState, type TestStack } from '../test/support/stack';

async function show(stack: TestStack, workflowId: string): Promise<string> {
  // The CLI's JSON is the format the Web UI downloads and historyFromJSON reads.
  return execFileSync(await ensureTemporalBinary(), [
    'workflow',
    'show',
    '--output',
    'json',
    '--workflow-id',
    workflowId,
    '--address',
    stack.env.TEMPORAL_ADDRESS,
    '--namespace',
    stack.env.TEMPORAL_NAMESPACE,
  ]).toString('utf8');
}

function save(name: string, json: string): void {
  const file = path.join(__dirname, '..', 'test', 'histories', name);
  writeFileSync(file, json);
  console.log(`recorded ${(JSON.parse(json) as { events: unknown[] }).events.length} events to ${path.relative(process.cwd(), file)}`);
}

async function until(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function main(): Promise<void> {
  const label = process.argv[2];
  if (!label || !/^[a-z0-9-]+$/.test(label))
    throw new Error('usage: npm run test:record-history -- <label> (lower-case letters, digits, -)');
  // The whole lifecycle in one run: the test stack's early continue-as-new would leave only its tail.
  const stack = await createStack({ ttl: '2 seconds', cleanupInterval: '2 seconds', chunkRows: 100, continueAsNewAfter: 10_000 });
  try {
    await stack.startWorker();
    const ref: MessageRef = { kind: 'campaign', id: 'recorded' };
    await stack.db('messages').insert({ kind: ref.kind, id: ref.id, name: 'Recorded campaign' });
    await stack.db('message_tags').insert({ kind: ref.kind, message_id: ref.id, tag: 'recorded' });
    await seedInteractions(stack.db, ref, 350);
    await stack.db('audiences').insert({ id: 'seg', type: 'segment', active: true });
    await stack
      .db('audience_filters')
      .insert({ audience_id: 'seg', filter_type: 'received_message_from_campaign', target_kind: ref.kind, target_id: ref.id });
    await stack.lifecycle.stop(ref.kind, ref.id);
    await waitForState(stack, ref, 'retained');
    await stack.db('audiences').where({ id: 'seg' }).update({ active: false });
    await stack.lifecycle.referencesChanged(ref.kind, ref.id);
    await waitForState(stack, ref, 'expired');
    await stack.client.workflow.getHandle(lifecycleWorkflowId(ref)).signal('resume', {});
    await until(async () => (await stack.lifecycle.status(ref.kind, ref.id))?.lastRefusal?.signal === 'resume', 'the refused resume');
    await stack.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'recorder@example.com', requestId: 'recorded-restore' });
    await waitForState(stack, ref, 'stopped');
    await stack.lifecycle.resume(ref.kind, ref.id);
    await waitForState(stack, ref, 'active');
    save(`lifecycle-${label}.json`, await show(stack, lifecycleWorkflowId(ref)));

    const bulkRefs: MessageRef[] = [
      { kind: 'campaign', id: 'bulk-a' },
      { kind: 'campaign', id: 'bulk-b' },
    ];
    for (const r of bulkRefs) {
      await stack.db('messages').insert({ kind: r.kind, id: r.id, name: `Bulk ${r.id}` });
      await stack.db('message_tags').insert({ kind: r.kind, message_id: r.id, tag: 'recorded-bulk' });
      await seedInteractions(stack.db, r, 120);
      await stack.lifecycle.stop(r.kind, r.id);
    }
    for (const r of bulkRefs) await waitForState(stack, r, 'expired');
    const bulk = new BulkRestoreClient(stack.client);
    const started = await bulk.start({
      tag: 'recorded-bulk',
      kind: 'campaign',
      requestedBy: 'recorder@example.com',
      requestId: 'recorded-bulk',
    });
    await until(async () => (await bulk.get(started.requestId))?.status === 'COMPLETED', 'the bulk restore', 120_000);
    save(`bulk-restore-${label}.json`, await show(stack, started.workflowId));
  } finally {
    await stack.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
