/**
 * Replays every workflow history a test stack made with today's workflow code: a change whose commands
 * depend on timing (which of two things in flight finished first) passes its test live and fails here,
 * as it would on a worker replaying the actor after a restart or a cache eviction.
 */
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';

/** How many histories are fetched at once. */
const FETCHING = 16;

/** One line per history that did not replay; empty when all did. */
export async function unreplayableHistories(client: Client): Promise<string[]> {
  const executions: { workflowId: string; runId: string }[] = [];
  for await (const wf of client.workflow.list()) executions.push({ workflowId: wf.workflowId, runId: wf.runId });
  async function* histories() {
    for (let i = 0; i < executions.length; i += FETCHING) {
      const batch = executions.slice(i, i + FETCHING);
      const fetched = await Promise.all(
        batch.map(async ({ workflowId, runId }) => ({
          workflowId,
          history: await client.workflow.getHandle(workflowId, runId).fetchHistory(),
        })),
      );
      yield* fetched;
    }
  }
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowsPath: require.resolve('../../workflows') }, histories())) {
    if (result.error) failures.push(`${result.workflowId} (run ${result.runId}): ${String(result.error)}`);
  }
  return failures;
}
