/** Replays a recorded full-cycle history: a non-deterministic change to the workflow fails here. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';

describe('workflow determinism', () => {
  it('replays the recorded full-cycle history', async () => {
    const history = historyFromJSON(JSON.parse(readFileSync(path.join(__dirname, 'histories', 'full-cycle.json'), 'utf8')));
    assert.ok((history.events?.length ?? 0) > 30, 'the recording covers a full cycle');
    await Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows') }, history, 'interaction-data:campaign:recorded');
  });
});
