/**
 * Bulk restores from the admin CLI and the HTTP API, on real Temporal and MySQL with a worker: follow to
 * the end with a summary, exit 1 when a message failed, --detach and `bulk status` re-attach, --dry-run
 * changes nothing, bad command lines and bodies are refused before anything starts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { buildApi, type ApiServer } from '../src/api/app';
import { BulkRestoreClient } from '../src/client/bulkRestoreClient';
import { runCli } from '../src/cli/main';
import { createLogger } from '../src/logger';
import type { Static } from '@fastify/type-provider-typebox';
import type { BulkPreviewSchema, BulkStarted, BulkView } from '../src/api/bulkRoutes';
import type { ErrorBody } from '../src/api/schemas';
import type { BulkRestoreProgress, BulkRestorePreview } from '../src/bulk/types';
import type { BulkRestoreView } from '../src/client/bulkRestoreClient';
import type { MessageRef } from '../src/shared/types';
import { asCaller, testAuth } from './support/auth';
import { createStack, seedInteractions, waitFor, waitForState, type TestStack } from './support/stack';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const TTL_SECONDS = 60;

describe('bulk restore from the CLI and the API', () => {
  let stack: TestStack;
  let api: ApiServer;
  /** The API as a caller with the restore scope, whose own address is api@example.com. */
  let caller: ReturnType<typeof asCaller>;

  before(async () => {
    stack = await createStack({ ttl: `${TTL_SECONDS} seconds`, cleanupInterval: '1 hour' });
    await stack.startWorker();
    const auth = await testAuth(stack.db);
    api = buildApi({
      auth: auth.auth,
      lifecycle: stack.lifecycle,
      bulk: new BulkRestoreClient(stack.client),
      connection: stack.connection,
      logger: createLogger('api-test', 'warn'),
      temporalTimeoutMs: 20_000,
    });
    await api.ready();
    caller = asCaller(api, await auth.token(['restore'], 'api@example.com'));
  });
  after(async () => {
    await api?.close();
    await stack?.close();
  });

  async function cli(...argv: string[]): Promise<Run> {
    let stdout = '';
    let stderr = '';
    const code = await runCli(argv, {
      stdout: { write: (s: string) => (stdout += s), isTTY: false },
      stderr: { write: (s: string) => (stderr += s), isTTY: false },
      env: { ...process.env, ...stack.env },
    });
    return { code, stdout, stderr };
  }

  async function expiredMessages(refs: MessageRef[], tags: string[]): Promise<void> {
    for (const r of refs) {
      await stack.db('messages').insert({ kind: r.kind, id: r.id, name: `Name of ${r.id}` });
      if (tags.length > 0) await stack.db('message_tags').insert(tags.map((tag) => ({ kind: r.kind, message_id: r.id, tag })));
      await seedInteractions(stack.db, r, 25);
    }
    const stoppedAt = new Date(Date.now() - (TTL_SECONDS + 5) * 1000).toISOString();
    await Promise.all(refs.map((r) => stack.lifecycle.stop(r.kind, r.id, { stoppedAt })));
    await Promise.all(refs.map((r) => waitForState(stack, r, 'expired', 60_000)));
  }

  function assertUsage(run: Run, mentions: RegExp): void {
    assert.equal(run.code, 2, `exit code; stderr: ${run.stderr}`);
    assert.match(run.stderr, mentions);
    assert.equal(run.stdout, '');
  }

  it('bad bulk command lines exit 2 and start nothing', async () => {
    assertUsage(
      await cli('restore', 'campaign:a', '--tag', 'x', '--requested-by', 'ops@example.com'),
      /give either --tag <tag> or <kind>:<id>…, not both/,
    );
    assertUsage(
      await cli('restore', 'campaign:a', 'canvas:b', '--kind', 'canvas', '--requested-by', 'ops@example.com'),
      /--kind only applies with --tag/,
    );
    assertUsage(
      await cli('restore', '--tag', 'x', '--kind', 'email', '--requested-by', 'ops@example.com'),
      /--kind must be one of campaign, canvas/,
    );
    assertUsage(await cli('restore', '--tag', "x' OR 1=1", '--requested-by', 'ops@example.com'), /--tag: malformed tag/);
    assertUsage(await cli('restore', '--tag', 'x'), /--requested-by <email> is required/);
    assertUsage(
      await cli('restore', '--tag', 'x', '--requested-by', 'ops@example.com', '--detach', '--dry-run'),
      /--detach and --dry-run do not go together/,
    );
    assertUsage(
      await cli('restore', '--tag', 'x', '--requested-by', 'ops@example.com', '--concurrency', '500'),
      /--concurrency must be at most 100/,
    );
    assertUsage(await cli('bulk', 'status', 'has spaces'), /<request>: malformed requestId/);
    const missing = await cli('bulk', 'status', 'br-0000');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no bulk restore br-0000/);
    const listed: string[] = [];
    for await (const wf of stack.client.workflow.list({ query: `WorkflowType = 'interactionDataBulkRestore'` })) listed.push(wf.workflowId);
    assert.deepEqual(listed, []);
  });

  it('restore --tag --kind follows to the end and prints the summary', async () => {
    await expiredMessages(
      [
        { kind: 'campaign', id: 'cli-1' },
        { kind: 'campaign', id: 'cli-2' },
        { kind: 'canvas', id: 'cli-3' },
      ],
      ['cli'],
    );
    const run = await cli('restore', '--tag', 'cli', '--kind', 'campaign', '--requested-by', 'cli@example.com');
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /bulk restore br-[0-9a-f]{20} started: expired campaigns tagged "cli"; cli@example\.com gets one summary e-mail/,
    );
    assert.match(run.stderr, /restoring: 2\/2 messages \(2 restored, 0 already available, 0 failed; 50 rows\)/);
    assert.match(run.stdout, /^bulk restore br-[0-9a-f]{20}: expired campaigns tagged "cli", requested by cli@example\.com\n/);
    assert.match(run.stdout, / {2}restored +2 \(50 interaction records\)\n/);
    assert.match(run.stdout, /summary e-mailed to cli@example\.com at /);
    assert.equal((await stack.lifecycle.status('canvas', 'cli-3'))?.state, 'expired');

    // The same command again attaches to the completed request: nothing restored or e-mailed twice.
    const again = await cli('restore', '--tag', 'cli', '--kind', 'campaign', '--requested-by', 'cli@example.com', '--json');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /attached to bulk restore br-[0-9a-f]{20} \(completed\).*name a new --request-id to run it again/);
    assert.equal((JSON.parse(again.stdout) as BulkRestoreProgress).restored, 2);
    assert.equal((await stack.db('email_outbox').where({ to_address: 'cli@example.com' })).length, 1);
  });

  it('several ids with an unknown one: exit 1, the failure and its reason printed', async () => {
    await expiredMessages([{ kind: 'campaign', id: 'ids-1' }], []);
    const run = await cli('restore', 'campaign:ids-1', 'canvas:ids-nobody', '--requested-by', 'ids@example.com');
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, / {2}restored +1 /);
    assert.match(run.stdout, /failed:\n {2}canvas:ids-nobody {2}unknown message/);
    assert.match(run.stderr, /error: 1 of 2 messages could not be restored/);
  });

  it('--detach returns the request id; bulk status re-attaches and follows it', async () => {
    await expiredMessages(
      [
        { kind: 'canvas', id: 'detach-1' },
        { kind: 'canvas', id: 'detach-2' },
      ],
      ['detach'],
    );
    const detached = await cli(
      'restore',
      '--tag',
      'detach',
      '--requested-by',
      'detach@example.com',
      '--request-id',
      'ticket-77',
      '--detach',
    );
    assert.equal(detached.code, 0, detached.stderr);
    assert.equal(detached.stdout, 'ticket-77\n');
    assert.match(detached.stderr, /Follow it with: interaction-data bulk status ticket-77/);

    const followed = await cli('bulk', 'status', 'interaction-data-bulk-restore:ticket-77');
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /^bulk restore ticket-77: expired campaigns and Canvases tagged "detach"/);
    assert.match(followed.stdout, / {2}restored +2 /);

    const once = await cli('bulk', 'status', 'ticket-77', '--once', '--json');
    assert.equal(once.code, 0, once.stderr);
    const view = JSON.parse(once.stdout) as BulkRestoreView;
    assert.equal(view.status, 'COMPLETED');
    assert.equal(view.progress?.restored, 2);
    assert.equal(view.progress?.phase, 'completed');
  });

  it('--dry-run lists what would be restored and sends nothing', async () => {
    await expiredMessages([{ kind: 'campaign', id: 'dry-cli' }], ['drycli']);
    const run = await cli('restore', '--tag', 'drycli', '--dry-run');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^MESSAGE +NAME +STATE +ACTION\ncampaign:dry-cli +Name of dry-cli +expired +restore\n$/);
    assert.match(
      run.stderr,
      /dry run, expired campaigns and Canvases tagged "drycli": 1 to restore, 0 already available, 0 unknown, of 1; nothing was sent/,
    );
    const one = await cli('restore', 'campaign:dry-cli', '--dry-run', '--json');
    assert.equal(one.code, 0, one.stderr);
    assert.equal((JSON.parse(one.stdout) as BulkRestorePreview).toRestore, 1);
    assert.equal((await stack.lifecycle.status('campaign', 'dry-cli'))?.state, 'expired');
  });

  it('one message without bulk options still goes to its actor directly', async () => {
    await expiredMessages([{ kind: 'campaign', id: 'single' }], []);
    const run = await cli('restore', 'campaign:single', '--requested-by', 'single@example.com', '--request-id', 'one-off', '--wait');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /campaign:single {2}restore requested \(request id one-off\)/);
    assert.equal((await stack.lifecycle.status('campaign', 'single'))?.lastRestore?.requestId, 'one-off');
    await assert.rejects(new BulkRestoreClient(stack.client).handle('one-off').describe(), WorkflowNotFoundError);
  });

  describe('HTTP API', () => {
    const post = (payload: unknown) => caller.inject({ method: 'POST', url: '/v1/restores', payload: payload as object });

    it('bad bodies are 400s naming the problem; nothing starts', async () => {
      const both = await post({ requestedBy: 'api@example.com', tag: 'x', ids: ['campaign:a'] });
      assert.equal(both.statusCode, 400);
      assert.match(both.json<ErrorBody>().message, /give either a tag or a list of messages/);
      const neither = await post({ requestedBy: 'api@example.com' });
      assert.equal(neither.statusCode, 400);
      const badIds = await post({ requestedBy: 'api@example.com', ids: ['campaign:ok', 'email:abc', 'canvas:a/b'] });
      assert.equal(badIds.statusCode, 400);
      assert.match(badIds.json<ErrorBody>().message, /^ids\[1\]: unknown message kind "email".*; ids\[2\]: malformed canvas id "a\/b"/);
      const kindWithIds = await post({ requestedBy: 'api@example.com', ids: ['campaign:a'], kind: 'canvas' });
      assert.equal(kindWithIds.statusCode, 400);
      assert.match(kindWithIds.json<ErrorBody>().message, /kind only applies to a restore by tag/);
      const badEmail = await post({ requestedBy: 'nope', tag: 'x' });
      assert.equal(badEmail.statusCode, 400);
      assert.equal(badEmail.json<ErrorBody>().field, 'requestedBy');
      const extra = await post({ requestedBy: 'api@example.com', tag: 'x', cc: 'boss@example.com' });
      assert.equal(extra.statusCode, 400);
      assert.match(extra.json<ErrorBody>().message, /unknown body property "cc"/);
      // The summary goes to the caller's own address; no other domain is allowed here.
      const bulkRestores = async () => {
        const ids: string[] = [];
        for await (const wf of stack.client.workflow.list({ query: `WorkflowType = 'interactionDataBulkRestore'` }))
          ids.push(wf.workflowId);
        return ids.sort();
      };
      const earlier = await bulkRestores();
      const stranger = await post({ requestedBy: 'boss@example.com', tag: 'x' });
      assert.equal(stranger.statusCode, 400, stranger.body);
      assert.match(stranger.json<ErrorBody>().message, /^requestedBy "boss@example\.com" is not allowed/);
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(await bulkRestores(), earlier, 'no bulk restore started');
      const badRequest = await caller.inject({ method: 'GET', url: '/v1/restores/has%20spaces' });
      assert.equal(badRequest.statusCode, 400);
      const none = await caller.inject({ method: 'GET', url: '/v1/restores/br-none' });
      assert.equal(none.statusCode, 404);
      const { paths } = (await caller.inject({ method: 'GET', url: '/openapi.json' })).json<{
        paths: Record<string, Record<string, unknown> | undefined>;
      }>();
      assert.ok(paths['/v1/restores']?.post, 'documented in the OpenAPI document');
      assert.ok(paths['/v1/restores/{request}']?.get);
    });

    it('POST starts (202), a repeat attaches (200), GET follows it to the outcome', async () => {
      await expiredMessages(
        [
          { kind: 'campaign', id: 'api-1' },
          { kind: 'canvas', id: 'api-2' },
        ],
        ['api'],
      );
      const dry = await post({ requestedBy: 'api@example.com', tag: 'api', dryRun: true });
      assert.equal(dry.statusCode, 200);
      assert.equal(dry.json<Static<typeof BulkPreviewSchema>>().toRestore, 2);

      const first = await post({ requestedBy: 'api@example.com', tag: 'api' });
      assert.equal(first.statusCode, 202, first.body);
      const body = first.json<Static<typeof BulkStarted>>();
      assert.equal(body.attached, false);
      assert.equal(body.statusUrl, `/v1/restores/${body.requestId}`);
      const second = await post({ requestedBy: 'api@example.com', tag: 'api' });
      assert.equal(second.statusCode, 200);
      assert.equal(second.json<Static<typeof BulkStarted>>().requestId, body.requestId);
      assert.equal(second.json<Static<typeof BulkStarted>>().attached, true);

      const done = await waitFor('the bulk restore to complete', async () => {
        const res = await caller.inject({ method: 'GET', url: body.statusUrl });
        assert.equal(res.statusCode, 200, res.body);
        const view = res.json<Static<typeof BulkView>>();
        return view.status === 'COMPLETED' ? view : null;
      });
      assert.equal(done.progress?.restored, 2);
      assert.equal(done.progress?.total, 2);
      assert.ok(done.progress?.summarySentAt);

      const conflict = await post({ requestedBy: 'api@example.com', ids: ['campaign:api-1'], requestId: body.requestId });
      assert.equal(conflict.statusCode, 409);
      assert.equal(conflict.json<ErrorBody>().error, 'request_conflict');

      // Without requestedBy, the summary goes to the caller's own address.
      const byIds = await post({ ids: ['campaign:api-1', 'canvas:api-2'], requestId: 'api-ids' });
      assert.equal(byIds.statusCode, 202, byIds.body);
      assert.equal(byIds.json<Static<typeof BulkStarted>>().requestedBy, 'api@example.com');
      const idsView = await waitFor('the id restore to complete', async () => {
        const view = (await caller.inject({ method: 'GET', url: '/v1/restores/interaction-data-bulk-restore:api-ids' })).json<
          Static<typeof BulkView>
        >();
        return view.status === 'COMPLETED' ? view : null;
      });
      assert.equal(idsView.progress?.alreadyAvailable, 2, 'restored by the tag request just before');
    });
  });
});
