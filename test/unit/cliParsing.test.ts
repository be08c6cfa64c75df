/**
 * The admin CLI's command-line checks in-process, without a server: a bad command line exits 2 and
 * sends nothing, even for the valid messages on the same line. Temporal's address points nowhere, so
 * anything that did try to send would fail with exit 1 instead. Good command lines against a real
 * server are in test/cli.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCliCaptured, type CliRun as Run } from '../support/cli';

const env = { TEMPORAL_ADDRESS: '127.0.0.1:1', MYSQL_URL: 'mysql://nobody@127.0.0.1:1/none', LOG_LEVEL: 'silent' };

const cli = (...argv: string[]): Promise<Run> => runCliCaptured(argv, env);

function assertUsage(run: Run, mentions: RegExp): void {
  assert.equal(run.code, 2, `exit code; stderr: ${run.stderr}`);
  assert.match(run.stderr, mentions);
  assert.equal(run.stdout, '');
}

describe('admin CLI command lines, in-process', () => {
  it('bad <kind>:<id>, even next to good ones', async () => {
    const run = await cli('stop', 'campaign:good-one', 'email:abc', `canvas:${'x'.repeat(65)}`, 'campaign', 'campaign:a/b');
    assertUsage(run, /4 invalid message references/);
    assert.match(run.stderr, /unknown message kind "email": expected one of campaign, canvas/);
    assert.match(run.stderr, /malformed canvas id "x{65}"/);
    assert.match(run.stderr, /expected <kind>:<id>, got "campaign"/);
    assert.match(run.stderr, /malformed campaign id "a\/b"/);
    assert.match(run.stderr, /nothing was sent/);

    assertUsage(await cli('resume', 'campaign:'), /malformed campaign id ""/);
    assertUsage(await cli('status', 'canvas:-dash'), /malformed canvas id "-dash"/);
    assertUsage(await cli('stop'), /missing required argument/);
  });

  it('restore without --requested-by, or with a bad e-mail or request id', async () => {
    assertUsage(await cli('restore', 'campaign:c1'), /--requested-by <email> is required/);
    assertUsage(
      await cli('restore', 'campaign:c1', '--requested-by', 'not-an-email'),
      /--requested-by: --requested-by must be an e-mail address, got "not-an-email"/,
    );
    assertUsage(
      await cli('restore', 'campaign:c1', '--requested-by', 'ops@example.com', '--request-id', 'two words'),
      /--request-id: malformed requestId/,
    );
    assertUsage(await cli('restore', '--requested-by', 'ops@example.com'), /expected at least one <kind>:<id>/);
    assertUsage(
      await cli('restore', 'campaign:c1', '--requested-by', 'ops@example.com', '--timeout', '5'),
      /--timeout only applies with --wait/,
    );
  });

  it('stop with a bad --stopped-at', async () => {
    assertUsage(
      await cli('stop', 'campaign:c1', '--stopped-at', '2026-01-31'),
      /--stopped-at: --stopped-at must be an ISO-8601 instant with a time zone/,
    );
  });

  it('list with a bad state, kind, tag or limit', async () => {
    assertUsage(
      await cli('list', '--state', 'deleted'),
      /--state must be one of active, stopped, retained, archiving, expired, restoring; got "deleted"/,
    );
    assertUsage(await cli('list', '--kind', 'sms'), /--kind must be one of campaign, canvas; got "sms"/);
    assertUsage(await cli('list', '--tag', "x' OR '1'='1"), /--tag: malformed tag/);
    assertUsage(await cli('list', '--limit', '0'), /--limit must be a positive whole number/);
  });

  it('unknown command or option', async () => {
    assertUsage(await cli('purge', 'campaign:abc'), /unknown command 'purge'/);
    assertUsage(await cli('stop', 'campaign:abc', '--force'), /unknown option '--force'/);
  });
});
