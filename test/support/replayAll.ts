/**
 * Replays every workflow history a test stack made with today's workflow code: a change whose commands
 * depend on timing (which of two things in flight finished first) passes its test live and fails here,
 * as it would on a worker replaying the actor after a restart or a cache eviction.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';

/** Where a history that did not replay is saved, to be replayed again while the cause is found. */
export const UNREPLAYABLE_DIR = path.resolve(__dirname, '..', '..', '.data', 'unreplayable');

/** How many histories are fetched at once. */
const FETCHING = 16;

/** One line per history that did not replay; empty when all did. */
export async function unreplayableHistories(client: Client): Promise<string[]> {
  const executions: { workflowId: string; runId: string }[] = [];
  for await (const wf of client.workflow.list()) executions.push({ workflowId: wf.workflowId, runId: wf.runId });
  const fetchedHistories = new Map<string, Parameters<typeof historyToJSON>[0]>();
  async function* histories() {
    for (let i = 0; i < executions.length; i += FETCHING) {
      const batch = executions.slice(i, i + FETCHING);
      const fetched = await Promise.all(
        batch.map(async ({ workflowId, runId }) => ({
          workflowId,
          runId,
          history: await client.workflow.getHandle(workflowId, runId).fetchHistory(),
        })),
      );
      for (const f of fetched) fetchedHistories.set(`${f.workflowId}/${f.runId}`, f.history);
      yield* fetched;
    }
  }
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowsPath: require.resolve('../../workflows') }, histories())) {
    if (!result.error) {
      fetchedHistories.delete(`${result.workflowId}/${result.runId}`);
      continue;
    }
    const saved = saveHistory(result.workflowId, result.runId, fetchedHistories.get(`${result.workflowId}/${result.runId}`));
    failures.push(`${result.workflowId} (run ${result.runId}): ${String(result.error)}; history saved in ${saved}`);
  }
  return failures;
}

function saveHistory(workflowId: string, runId: string, history: Parameters<typeof historyToJSON>[0] | undefined): string {
  if (!history) return '(not kept)';
  mkdirSync(UNREPLAYABLE_DIR, { recursive: true });
  const file = path.join(UNREPLAYABLE_DIR, `${workflowId.replace(/[^\w.-]+/g, '_')}-${runId}.json`);
  writeFileSync(file, historyToJSON(history));
  return file;
}
