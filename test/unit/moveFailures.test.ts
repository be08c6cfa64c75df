import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { problemFailure } from '../../activities/index';
import { ArchiveConflictError } from '../../src/storage/archiver';
import { ChunkIntegrityError } from '../../src/storage/chunkCodec';
import { activityAttemptToken, StaleAttemptError } from '../../src/storage/fence';

const input = { kind: 'campaign' as const, id: 'spring-sale', generation: 3 };

describe('move failures no retry can fix', () => {
  for (const [err, type, kept] of [
    [new ChunkIntegrityError('chunk 4 fails its checksum'), 'ChunkIntegrityError', /Nothing was deleted/],
    [new ArchiveConflictError('interactions_7 holds 10 rows but its chunks 9'), 'ArchiveConflictError', /Nothing was dropped/],
    [new StaleAttemptError('this archive attempt is stale'), 'StaleAttemptError', /moved the message meanwhile/],
  ] as const) {
    it(`${type}: non-retryable, of its own type, saying what was kept and how to retry`, () => {
      const failure = problemFailure(err, 'restore', input, 'run/9/2', 2);
      assert.ok(failure instanceof ApplicationFailure);
      assert.equal(failure.type, type);
      assert.equal(failure.nonRetryable, true);
      assert.match(failure.message, /restore of campaign:spring-sale generation 3/);
      assert.ok(failure.message.includes(err.message));
      assert.match(failure.message, kept);
      assert.match(failure.message, /interaction-data retry campaign:spring-sale/);
      assert.deepEqual(failure.details, [
        { kind: 'campaign', id: 'spring-sale', generation: 3, move: 'restore', attempt: 2, token: 'run/9/2', error: err.message },
      ]);
    });
  }

  it('leaves every other failure to the retry policy', () => {
    assert.equal(problemFailure(new Error('Connection lost: The server closed the connection.'), 'archive', input, 't', 1), null);
  });
});

describe('attempt tokens of activities', () => {
  it('orders attempts by run, activity and attempt; an activity without a workflow gets a token of its own', () => {
    assert.equal(activityAttemptToken({ workflowExecution: { runId: 'r-1' }, activityId: '12', attempt: 3 }), 'r-1/12/3');
    const a = activityAttemptToken({ activityId: '12', attempt: 3 });
    assert.notEqual(a, activityAttemptToken({ activityId: '12', attempt: 3 }));
  });
});
