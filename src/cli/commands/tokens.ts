import os from 'node:os';
import type { Command } from 'commander';
import type { Knex } from 'knex';
import { ApiTokenStore, TokenError, tokenView, type ApiTokenRecord } from '../../auth/apiTokens';
import { recordAudit } from '../../auth/auditLog';
import { parseScopes, SCOPES } from '../../auth/scopes';
import { addDuration, parseDuration } from '../../shared/duration';
import { EMAIL_PATTERN } from '../../shared/validation';
import { CommandFailedError, UsageError, type CliContext } from '../context';
import { instant, json, table } from '../format';

/** Who ran the command, for the audit trail and the token's `created_by`. */
export function cliPrincipal(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry (some containers): keep $USER.
  }
  return `cli:${user}@${os.hostname()}`;
}

/** An admin's command in the audit trail, as the API's requests are. */
export async function recordCliAudit(db: Knex, route: string, target: string, ok: boolean): Promise<void> {
  const principal = cliPrincipal();
  await recordAudit(db, {
    at: new Date(),
    principal,
    principalName: principal,
    scope: 'admin',
    method: 'CLI',
    route,
    target,
    status: ok ? 200 : 400,
    outcome: ok ? 'ok' : 'refused',
    requestId: '',
    source: 'cli',
  });
}

/** `--expires 90d` (from now) or `--expires 2027-03-01T00:00:00Z`. */
export function parseExpiry(text: string, now = new Date()): Date {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const at = new Date(text);
    if (Number.isNaN(at.getTime())) throw new UsageError(`--expires ${JSON.stringify(text)} is not a date`);
    return at;
  }
  try {
    return addDuration(now, parseDuration(text));
  } catch (err) {
    throw new UsageError(`--expires: ${(err as Error).message}; or give an ISO date such as 2027-03-01`);
  }
}

function status(r: ApiTokenRecord, now = new Date()): string {
  if (r.revokedAt) return 'revoked';
  if (r.expiresAt && r.expiresAt.getTime() <= now.getTime()) return 'expired';
  return 'active';
}

export function registerTokens(program: Command, ctx: CliContext): void {
  const tokens = program.command('tokens').description('API tokens for the HTTP API: create, list, revoke (kept hashed in MySQL)');

  const audit = async (route: string, target: string, ok: boolean) => recordCliAudit(await ctx.db(), route, target, ok);

  tokens
    .command('create')
    .description('make a token; its secret is printed once and never stored in clear')
    .requiredOption('--name <name>', 'what the token is for, e.g. billing-service')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`)
    .option('--email <address>', "where this caller's restore e-mails go")
    .option('--expires <when>', 'a duration from now (90d, 6 months) or an ISO date')
    .option('--json', 'print JSON')
    .action(async (opts: { name: string; scopes: string; email?: string; expires?: string; json?: boolean }) => {
      let scopes;
      try {
        scopes = parseScopes(opts.scopes);
      } catch (err) {
        throw new UsageError(`--scopes: ${(err as Error).message}`);
      }
      if (opts.email !== undefined && !new RegExp(EMAIL_PATTERN).test(opts.email))
        throw new UsageError(`--email ${JSON.stringify(opts.email)} is not an e-mail address`);
      const expiresAt = opts.expires === undefined ? null : parseExpiry(opts.expires);
      const store = new ApiTokenStore(await ctx.db());
      let made;
      try {
        made = await store.create({ name: opts.name, scopes, email: opts.email ?? null, expiresAt, createdBy: cliPrincipal() });
      } catch (err) {
        if (err instanceof TokenError) throw new UsageError(err.message);
        throw err;
      }
      await audit('tokens create', `token:${made.record.id} ${made.record.name} [${scopes.join(' ')}]`, true);
      if (opts.json) {
        ctx.out(json({ token: made.token, ...tokenView(made.record) }));
        return;
      }
      ctx.out(`token    ${made.token}`);
      ctx.out(`id       ${made.record.id}`);
      ctx.out(`name     ${made.record.name}`);
      ctx.out(`scopes   ${made.record.scopes.join(', ')}`);
      ctx.out(`email    ${made.record.email ?? '-'}`);
      ctx.out(`expires  ${made.record.expiresAt ? instant(made.record.expiresAt.toISOString()) : 'never'}`);
      ctx.err('The secret is shown only now: store it where the caller reads its secrets.');
    });

  tokens
    .command('list')
    .description('tokens and their scopes (never their secrets)')
    .option('--all', 'include revoked tokens')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      const list = await new ApiTokenStore(await ctx.db()).list({ includeRevoked: opts.all === true });
      if (opts.json) {
        ctx.out(json(list.map(tokenView)));
        return;
      }
      if (list.length === 0) {
        ctx.out('no tokens (make one with: interaction-data tokens create --name <name> --scopes <scopes>)');
        return;
      }
      const rows = list.map((r) => [
        r.id,
        r.name,
        r.scopes.join(','),
        r.email ?? '-',
        status(r),
        instant(r.createdAt.toISOString()),
        r.expiresAt ? instant(r.expiresAt.toISOString()) : 'never',
        r.lastUsedAt ? instant(r.lastUsedAt.toISOString()) : '-',
      ]);
      for (const line of table(['ID', 'NAME', 'SCOPES', 'EMAIL', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED'], rows)) ctx.out(line);
    });

  tokens
    .command('revoke')
    .description('revoke tokens by id or name; requests with them are refused from now on')
    .argument('<id-or-name...>')
    .action(async (keys: string[]) => {
      const store = new ApiTokenStore(await ctx.db());
      const failures: string[] = [];
      for (const key of keys) {
        try {
          const r = await store.revoke(key);
          await audit('tokens revoke', `token:${r.id} ${r.name}`, true);
          ctx.out(`${r.id}  ${r.name}  revoked ${instant(r.revokedAt?.toISOString())}`);
        } catch (err) {
          if (!(err instanceof TokenError)) throw err;
          await audit('tokens revoke', key, false);
          failures.push(err.message);
        }
      }
      if (failures.length > 0) throw new CommandFailedError(failures.join('; '));
    });
}
