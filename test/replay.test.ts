/**
 * Replays every recorded history in test/histories/ with today's workflow code: a change to the
 * workflows that is not behind `patched()` fails here (docs/WORKFLOWS.md).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';

const dir = path.join(__dirname, 'histories');

describe('workflow determinism', () => {
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    it(`replays ${file}`, async () => {
      const json = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
        events: { workflowExecutionStartedEventAttributes?: unknown }[];
      };
      const history = historyFromJSON(json);
      assert.ok((history.events?.length ?? 0) > 20, 'the recording covers a whole run');
      await Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows') }, history, file.replace(/\.json$/, ''));
    });
  }
});
