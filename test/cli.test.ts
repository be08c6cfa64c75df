/**
 * The admin CLI against a real Temporal server and a worker: a bad command line exits 2 and sends
 * nothing, even for the valid messages on the same line; good ones reach the right actors (Updates with
 * start), and the CLI prints the actors' own answers.
 *
 *   npx tsx scripts/test.ts test/cli.test.ts
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { runCliCaptured, type CliRun as Run } from './support/cli';
import { freePort } from '../src/temporal/devServer';
import { RESUME_REFUSED_MESSAGE } from '../src/shared/types';
import { createStack, waitForState, type TestStack } from './support/stack';

const REPO_ROOT = path.resolve(__dirname, '..');

const uid = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

describe('admin CLI on a real Temporal server', () => {
  let stack: TestStack;
  let temporal: { client: Client };
  let env: NodeJS.ProcessEnv;

  before(async () => {
    // The actors answer stop, resume and restore themselves: a worker runs in this file's namespace.
    stack = await createStack();
    await stack.startWorker();
    temporal = { client: stack.client };
    env = { ...process.env, ...stack.env };
  });
  after(async () => stack?.close());

  const cli = (...argv: string[]): Promise<Run> => runCliCaptured(argv, env);

  async function assertNotStarted(...workflowIds: string[]): Promise<void> {
    for (const id of workflowIds) {
      await assert.rejects(temporal.client.workflow.getHandle(id).describe(), WorkflowNotFoundError, `${id} must not have been started`);
    }
  }

  async function assertRunning(...workflowIds: string[]): Promise<void> {
    for (const id of workflowIds) {
      const d = await temporal.client.workflow.getHandle(id).describe();
      assert.equal(d.status.name, 'RUNNING');
      assert.equal(d.taskQueue, 'interaction-data');
      assert.equal(d.type, 'interactionDataLifecycle');
    }
  }

  function assertUsage(run: Run, mentions: RegExp): void {
    assert.equal(run.code, 2, `exit code; stderr: ${run.stderr}`);
    assert.match(run.stderr, mentions);
    assert.equal(run.stdout, '');
  }

  // Every other bad command line is checked in-process, without a server: test/unit/cliParsing.test.ts.
  it('a bad command line exits 2 and starts no actor, even for the valid messages on it', async () => {
    const good = uid('good');
    const run = await cli('stop', `campaign:${good}`, 'email:abc');
    assertUsage(run, /unknown message kind "email"/);
    assert.match(run.stderr, /nothing was sent/);
    const id = uid('restore');
    assertUsage(await cli('restore', `campaign:${id}`, '--requested-by', 'not-an-email'), /--requested-by must be an e-mail address/);
    await assertNotStarted(`interaction-data:campaign:${good}`, `interaction-data:campaign:${id}`, 'interaction-data:email:abc');
  });

  it('Temporal unreachable → exit 1 with a clear message', async () => {
    const saved = env;
    env = { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` };
    try {
      const run = await cli('stop', 'campaign:abc');
      assert.equal(run.code, 1);
      assert.match(run.stderr, /Cannot reach the Temporal server at 127\.0\.0\.1:\d+/);
    } finally {
      env = saved;
    }
  });

  describe('good command lines reach the actors, which answer', () => {
    /** Actors the commands below left running; `list` must find exactly these. */
    const started: string[] = [];

    it('stop several messages', async () => {
      const a = uid('stop');
      const b = uid('stop');
      // The same message twice on one line is one stop; in the future, so nothing expires during the file.
      const run = await cli('stop', `campaign:${a}`, `canvas:${b}`, `campaign:${a}`, '--stopped-at', '2126-01-31T12:00:00+01:00');
      assert.equal(run.code, 0, run.stderr);
      // The stack's TTL is 3 seconds: the actor's deadline is its stop plus that.
      assert.equal(
        run.stdout,
        `campaign:${a}  stopped at 2126-01-31T11:00:00.000Z; its data expires at 2126-01-31T11:00:03.000Z\n` +
          `canvas:${b}  stopped at 2126-01-31T11:00:00.000Z; its data expires at 2126-01-31T11:00:03.000Z\n`,
      );
      await assertRunning(`interaction-data:campaign:${a}`, `interaction-data:canvas:${b}`);
      started.push(`interaction-data:campaign:${a}`, `interaction-data:canvas:${b}`);

      const again = await cli('stop', `campaign:${a}`);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, `campaign:${a}  unchanged (state: stopped, expires at 2126-01-31T11:00:03.000Z)\n`);

      // Available data: nothing to restore, and the actor says so.
      const restore = await cli('restore', `canvas:${b}`, '--requested-by', 'ops@example.com');
      assert.equal(restore.code, 0, restore.stderr);
      assert.equal(restore.stdout, `canvas:${b}  interaction data is already available; nothing to restore\n`);

      // A stopped message resumes.
      const resumed = await cli('resume', `canvas:${b}`);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.equal(resumed.stdout, `canvas:${b}  resumed (state: active)\n`);
      assert.equal((await stack.lifecycle.status('canvas', b))?.state, 'active');
    });

    it('resume a message never seen before', async () => {
      const id = uid('resume');
      const run = await cli('resume', `canvas:${id}`);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `canvas:${id}  already active (state: active)\n`);
      await assertRunning(`interaction-data:canvas:${id}`);
      started.push(`interaction-data:canvas:${id}`);
    });

    it('retry of an actor with no problem is refused and changes nothing', async () => {
      const id = started.find((w) => w.includes(':canvas:'))?.split(':')[2];
      assert.ok(id, 'a canvas actor started above');
      const before = await stack.lifecycle.status('canvas', id);
      const run = await cli('retry', `canvas:${id}`);
      assert.equal(run.code, 1, `exit code; stderr: ${run.stderr}`);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, new RegExp(`^canvas:${id}  failed: .*nothing to retry`, 'm'));
      assert.equal((await stack.lifecycle.status('canvas', id))?.revision, before?.revision);
    });

    it('restore without --wait prints the request id (an expired message); its resume is refused', async () => {
      const id = uid('restore');
      // Stopped long ago: with the stack's TTL of seconds it expires at once.
      const stop = await cli('stop', `campaign:${id}`, '--stopped-at', '2020-01-01T00:00:00Z');
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal(stop.stdout, `campaign:${id}  stopped at 2020-01-01T00:00:00.000Z; its data expires at 2020-01-01T00:00:03.000Z\n`);
      await assertRunning(`interaction-data:campaign:${id}`);
      started.push(`interaction-data:campaign:${id}`);
      await waitForState(stack, { kind: 'campaign', id }, 'expired');

      const refused = await cli('resume', `campaign:${id}`);
      assert.equal(refused.code, 1, `exit code; stderr: ${refused.stderr}`);
      assert.equal(refused.stdout, '');
      assert.match(refused.stderr, new RegExp(`^campaign:${id}  ${RESUME_REFUSED_MESSAGE.campaign}\n`));
      assert.equal((await stack.lifecycle.status('campaign', id))?.state, 'expired', 'a refused resume changes nothing');

      const run = await cli('restore', `campaign:${id}`, '--requested-by', 'ops@example.com', '--request-id', 'ticket-42');
      assert.equal(run.code, 0, run.stderr);
      assert.equal(
        run.stdout,
        `campaign:${id}  restore requested (request id ticket-42); ops@example.com will be e-mailed when it is done\n`,
      );
      await assertRunning(`interaction-data:campaign:${id}`);
    });

    it('restore of an id no one knows fails and leaves no running actor', async () => {
      const id = uid('unknown');
      const run = await cli('restore', `canvas:${id}`, '--requested-by', 'ops@example.com');
      assert.equal(run.code, 1, `exit code; stderr: ${run.stderr}`);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, new RegExp(`^canvas:${id}  failed: .*never defined, stopped or sent events for`, 'm'));
      const d = await temporal.client.workflow.getHandle(`interaction-data:canvas:${id}`).describe();
      assert.notEqual(d.status.name, 'RUNNING', 'no actor is left running for it');
    });

    it('restore --tag --detach starts one bulk-restore workflow and prints its request id', async () => {
      const run = await cli('restore', '--tag', 'spring', '--requested-by', 'ops@example.com', '--detach');
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^br-[0-9a-f]{20}\n$/);
      const d = await temporal.client.workflow.getHandle(`interaction-data-bulk-restore:${run.stdout.trim()}`).describe();
      assert.equal(d.type, 'interactionDataBulkRestore');
      // A worker runs: with no message tagged "spring" it may already have finished.
      assert.ok(['RUNNING', 'COMPLETED'].includes(d.status.name), d.status.name);
    });

    it('status of messages never signalled', async () => {
      const id = uid('never');
      const human = await cli('status', `campaign:${id}`);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /^MESSAGE +STATE +AVAILABLE +EXPIRES AT +STOPPED AT +NOTE\n/);
      assert.match(human.stdout, new RegExp(`campaign:${id} +- +- +- +- +no lifecycle yet`));

      const json = await cli('status', `campaign:${id}`, '--json');
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), [{ message: `campaign:${id}`, found: false, status: null }]);
      await assertNotStarted(`interaction-data:campaign:${id}`);
    });

    it('list finds the actors started above', async () => {
      let listed: { workflowId: string; kind: string }[] = [];
      for (let i = 0; i < 50; i++) {
        const run = await cli('list', '--json');
        assert.equal(run.code, 0, run.stderr);
        listed = JSON.parse(run.stdout) as typeof listed;
        if (started.every((w) => listed.some((l) => l.workflowId === w))) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(listed.map((l) => l.workflowId).sort(), [...started].sort());

      const canvases = await cli('list', '--kind', 'canvas');
      assert.equal(canvases.code, 0, canvases.stderr);
      assert.match(canvases.stdout, /^MESSAGE +STATE +EXPIRES AT +TAGS\n/);
      assert.equal(canvases.stdout.trim().split('\n').length, 1 + started.filter((w) => w.includes(':canvas:')).length);
    });
  });

  it('bin/interaction-data runs the CLI', async () => {
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(path.join(REPO_ROOT, 'bin/interaction-data'), ['list', '--state', 'gone'], { env }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--state must be one of/);
    const { stdout: help } = await promisify(execFile)(path.join(REPO_ROOT, 'bin/interaction-data'), ['--help'], { env });
    assert.match(help, /Usage: interaction-data/);
    for (const command of ['stop', 'resume', 'restore', 'retry', 'status', 'list']) assert.match(help, new RegExp(`\\n  ${command} `));
  });
});
