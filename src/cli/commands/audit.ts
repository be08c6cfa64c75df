import type { Command } from 'commander';
import { readAudit } from '../../auth/auditLog';
import { parseDuration } from '../../shared/duration';
import { UsageError, type CliContext } from '../context';
import { instant, json, table } from '../format';

/** `--since 24h` (ago) or `--since 2026-12-01T00:00:00Z`. */
export function parseSince(text: string, now = new Date()): Date {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const at = new Date(text);
    if (Number.isNaN(at.getTime())) throw new UsageError(`--since ${JSON.stringify(text)} is not a date`);
    return at;
  }
  let d;
  try {
    d = parseDuration(text);
  } catch (err) {
    throw new UsageError(`--since: ${(err as Error).message}; or give an ISO date such as 2026-12-01`);
  }
  const at = new Date(now.getTime() - d.milliseconds);
  at.setUTCMonth(at.getUTCMonth() - d.months);
  return at;
}

export function registerAudit(program: Command, ctx: CliContext): void {
  program
    .command('audit')
    .description('the audit trail: who changed what through the API (and the token commands), oldest first')
    .option('--since <when>', 'a duration ago (24h, 7d) or an ISO date', '24h')
    .option('--principal <who>', 'only this principal (token:<id>, oidc:<sub>, cli:<user>) or token name')
    .option('--limit <n>', 'at most this many entries (the newest)', '1000')
    .option('--json', 'print JSON')
    .action(async (opts: { since: string; principal?: string; limit: string; json?: boolean }) => {
      const since = parseSince(opts.since);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit <= 0 || limit > 100_000)
        throw new UsageError(`--limit must be a whole number from 1 to 100000, got ${JSON.stringify(opts.limit)}`);
      const { entries, truncated } = await readAudit(await ctx.db(), {
        since,
        limit,
        ...(opts.principal ? { principal: opts.principal } : {}),
      });
      if (opts.json) {
        ctx.out(json({ since: since.toISOString(), entries: entries.map((e) => ({ ...e, at: e.at.toISOString() })), truncated }));
        return;
      }
      if (entries.length === 0) {
        ctx.out(`no audit entries since ${instant(since.toISOString())}`);
        return;
      }
      const rows = entries.map((e) => [
        instant(e.at.toISOString()),
        e.principalName && e.principalName !== e.principal ? `${e.principal} (${e.principalName})` : e.principal,
        e.scope ?? '-',
        `${e.method} ${e.route}`,
        e.target || '-',
        `${e.status} ${e.outcome}`,
      ]);
      for (const line of table(['AT', 'WHO', 'SCOPE', 'ROUTE', 'TARGET', 'OUTCOME'], rows)) ctx.out(line);
      if (truncated) ctx.err(`(only the newest ${limit}; raise --limit or narrow --since)`);
    });
}
