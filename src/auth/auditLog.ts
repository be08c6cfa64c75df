/**
 * The audit trail: who did what, with which scope, to what, with what outcome and when. Written for
 * every mutating API request (and every read of personal data), refused ones included, and by the
 * CLI's token commands; read with `interaction-data audit`.
 */
import type { Knex } from 'knex';
import { timeOf } from '../dataplane/sql';

export type AuditOutcome = 'ok' | 'denied' | 'refused' | 'limited' | 'error';

export interface AuditEntry {
  at: Date;
  /** `token:<id>`, `oidc:<sub>`, `cli:<os user>`, or `anonymous` for a request without a valid token. */
  principal: string;
  principalName: string;
  scope: string | null;
  method: string;
  route: string;
  target: string;
  status: number;
  outcome: AuditOutcome;
  requestId: string;
  /** Where the request came from: the client's address, or `cli`. */
  source: string;
}

export function outcomeOf(status: number): AuditOutcome {
  if (status === 401 || status === 403) return 'denied';
  if (status === 429) return 'limited';
  if (status >= 500) return 'error';
  if (status >= 400) return 'refused';
  return 'ok';
}

const clip = (text: string, n: number) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

export async function recordAudit(db: Knex, entry: AuditEntry): Promise<void> {
  await db('audit_log').insert({
    at: entry.at,
    principal: clip(entry.principal, 255),
    principal_name: clip(entry.principalName, 255),
    scope: entry.scope,
    method: entry.method,
    route: clip(entry.route, 255),
    target: clip(entry.target, 512),
    status: entry.status,
    outcome: entry.outcome,
    request_id: clip(entry.requestId, 64),
    source: clip(entry.source, 64),
  });
}

export interface AuditQuery {
  since: Date;
  principal?: string;
  limit: number;
}

interface AuditRow {
  /** A UTC string: knex.ts sets dateStrings. */
  at: Date | string;
  principal: string;
  principal_name: string;
  scope: string | null;
  method: string;
  route: string;
  target: string;
  status: number;
  outcome: AuditOutcome;
  request_id: string;
  source: string;
}

/** Entries since a time, oldest first; at most `limit` (the newest ones when there are more). */
export async function readAudit(db: Knex, query: AuditQuery): Promise<{ entries: AuditEntry[]; truncated: boolean }> {
  const q = db<AuditRow>('audit_log')
    .where('at', '>=', query.since)
    .orderBy('id', 'desc')
    .limit(query.limit + 1);
  if (query.principal)
    q.andWhere((w) => {
      w.where('principal', query.principal as string).orWhere('principal_name', query.principal as string);
    });
  const rows = await q;
  const truncated = rows.length > query.limit;
  const entries = rows
    .slice(0, query.limit)
    .reverse()
    .map((r) => ({
      at: timeOf(r.at) as Date,
      principal: r.principal,
      principalName: r.principal_name,
      scope: r.scope,
      method: r.method,
      route: r.route,
      target: r.target,
      status: r.status,
      outcome: r.outcome,
      requestId: r.request_id,
      source: r.source,
    }));
  return { entries, truncated };
}
