import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { recordAudit } from '../../auth/auditLog';
import { assertUserId, ErasureClient } from '../../client/erasureClient';
import { erasureView, type ErasureView } from '../../privacy/erasureRecords';
import { assertRequestId, InvalidInputError } from '../../shared/validation';
import { CommandFailedError, UsageError, type CliContext } from '../context';
import { json } from '../format';
import { cliPrincipal } from './tokens';

const POLL_MS = 1_000;

function describe(v: ErasureView): string {
  return (
    `${v.requestId}  ${v.status}  messages ${v.messages.done}/${v.messages.total}${v.messages.failed ? ` (${v.messages.failed} failed)` : ''}` +
    `  rows erased: ${v.hotRows} hot, ${v.archivedRows} archived  chunks read ${v.chunksRead}, rewritten ${v.chunksRewritten}`
  );
}

export function registerUsers(program: Command, ctx: CliContext): void {
  const users = program
    .command('users')
    .description("a user's privacy requests: erasure (the access export is GET /v1/users/{id}/interactions)");

  users
    .command('erase')
    .description(
      'erase users: their interaction rows, hot and archived, summaries and pairs; their events up to now are refused from then on (cannot be undone)',
    )
    .argument('<user-id...>', 'user ids')
    .option('--request-id <id>', 'name the request (one user only); the same id again attaches to it')
    .option('--wait', 'wait until every erasure is done, printing progress')
    .option('--json', 'print JSON')
    .action(async (ids: string[], opts: { requestId?: string; wait?: boolean; json?: boolean }) => {
      if (opts.requestId !== undefined && ids.length > 1) throw new UsageError('--request-id names one request: give one user id with it');
      try {
        ids.forEach((id) => assertUserId(id));
      } catch (err) {
        if (err instanceof InvalidInputError) throw new UsageError(err.message);
        throw err;
      }
      const db = await ctx.db();
      const principal = cliPrincipal();
      const client = new ErasureClient(await ctx.temporalClient(), db);
      const started = [];
      for (const userId of ids) {
        const s = await ctx.withDeadline(() =>
          client.start({ userId, requestedBy: principal, ...(opts.requestId ? { requestId: opts.requestId } : {}) }),
        );
        // The trail names the request, never the user: the request keeps only a hash of the id once done.
        await recordAudit(db, {
          at: new Date(),
          principal,
          principalName: principal,
          scope: 'privacy',
          method: 'CLI',
          route: 'users erase',
          target: `erasure ${s.requestId}`,
          status: s.attached ? 200 : 202,
          outcome: 'ok',
          requestId: '',
          source: 'cli',
        });
        started.push(s);
        if (!opts.json)
          ctx.out(
            `${s.requestId}  ${s.attached ? 'attached to the running erasure' : 'started'}  (events up to ${s.erasedThrough} refused from now on)`,
          );
      }
      if (!opts.wait) {
        if (opts.json) ctx.out(json(started));
        return;
      }
      const views: ErasureView[] = [];
      for (const s of started) {
        let last = '';
        for (;;) {
          const v = await client.get(s.requestId);
          if (!v) throw new CommandFailedError(`erasure ${s.requestId} is not recorded`);
          const line = describe(v);
          if (!opts.json && line !== last) ctx.out(line);
          last = line;
          if (v.status !== 'running') {
            views.push(v);
            break;
          }
          await sleep(POLL_MS);
        }
      }
      if (opts.json) ctx.out(json(views));
      const failed = views.filter((v) => v.status !== 'done');
      if (failed.length > 0)
        throw new CommandFailedError(`${failed.length} erasure(s) did not finish: ${failed.map((v) => v.error ?? v.status).join('; ')}`);
    });

  users
    .command('erasure')
    .description("an erasure's progress")
    .argument('<request-id>', 'the request id `users erase` printed')
    .option('--json', 'print JSON')
    .action(async (requestId: string, opts: { json?: boolean }) => {
      let v: ErasureView | null;
      try {
        v = await erasureView(await ctx.db(), assertRequestId(requestId));
      } catch (err) {
        if (err instanceof InvalidInputError) throw new UsageError(err.message);
        throw err;
      }
      if (!v) throw new CommandFailedError(`no erasure ${requestId}`);
      ctx.out(opts.json ? json(v) : describe(v));
    });
}
