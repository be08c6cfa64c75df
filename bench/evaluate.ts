/**
 * Benchmark: POST /v1/retargeting/evaluate, "Received Message from Campaign", first page, over a hot
 * store of 10 million interaction rows where the campaign has 100,000 recipients.
 *
 *   npm run bench:evaluate                               10,000,000 rows, 100,000 recipients, 300 requests
 *   BENCH_ROWS=1000000 npm run bench:evaluate            a quick look
 *
 * The rows are generated inside MySQL (INSERT ... SELECT over a digits cross join: MariaDB and MySQL 8)
 * into a throwaway database, then copied into each message's own table, where the service keeps them
 * (src/storage/hotTables.ts); a large message's table gets its secondary index built once, by a sort,
 * after its rows are in (the template's indexes; the script checks that), then ANALYZE TABLE. The
 * requests go through the real HTTP route of the API, listening on a free port, with a token of the
 * messages scope (authentication and the rate limiter in the path, as in production). The database is
 * dropped at the end (BENCH_KEEP=1 keeps it). Environment: BENCH_MYSQL_URL (else MYSQL_URL, else the
 * local default), BENCH_ROWS, BENCH_RECIPIENTS, BENCH_REQUESTS, BENCH_LIMIT (users per page, default 1000).
 */
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Connection } from '@temporalio/client';
import { Client } from '@temporalio/client';
import pino from 'pino';
import { buildApi } from '../src/api/app';
import { ApiTokenStore } from '../src/auth/apiTokens';
import { BearerAuthenticator } from '../src/auth/authenticator';
import { LifecycleClient } from '../src/client/lifecycleClient';
import { DEFAULT_MYSQL_URL } from '../src/config';
import { openDatabase, type Db } from '../src/db/knex';
import { currentHotTable, HOT_TABLE_TEMPLATE } from '../src/storage/hotTables';
import { loadIntoHotTables, secondaryIndexes } from './lib/dataset';

const envInt = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const ROWS = envInt('BENCH_ROWS', 10_000_000);
const RECIPIENTS = envInt('BENCH_RECIPIENTS', 100_000);
const REQUESTS = envInt('BENCH_REQUESTS', 300);
const LIMIT = envInt('BENCH_LIMIT', 1000);
const TARGET = 'bench-target';
const OTHER_MESSAGES = 500;
const USERS = 2_000_000;

const log = (msg: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const uptime = () => execSync('uptime').toString().trim();

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** `n` from 0 to 10^digits - 1, as a derived table both MariaDB and MySQL 8 accept. */
function numbers(digits: number): string {
  const d =
    '(SELECT 0 AS v UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)';
  const parts = Array.from({ length: digits }, (_, i) => `${d} d${i}`);
  const expr = Array.from({ length: digits }, (_, i) => `d${i}.v * ${10 ** i}`).join(' + ');
  return `(SELECT ${expr} AS n FROM ${parts.join(' CROSS JOIN ')})`;
}

const indexList = (indexes: Map<string, string>) => [...indexes].map(([k, cols]) => `${k}(${cols})`).sort();

async function load(db: Db): Promise<void> {
  const t0 = Date.now();
  const targetRows = Math.round(RECIPIENTS * 1.33);
  await loadIntoHotTables(
    db,
    async (staging) => {
      // The target campaign: one receipt per recipient, a third of them also opened.
      await db.raw(
        `INSERT INTO ?? (event_id, message_kind, message_id, user_id, event_type, variant_id, channel, occurred_at)
         SELECT CONCAT('t-', n), 'campaign', ?, CONCAT('u', LPAD((n * 7919) % ?, 7, '0')), IF(n < ?, 'received', 'opened'), NULL, 'email',
                TIMESTAMP('2026-01-01') + INTERVAL (n % 86400) SECOND
         FROM ${numbers(6)} s WHERE n < ?`,
        [staging, TARGET, USERS, RECIPIENTS, targetRows],
      );
      const others = ROWS - targetRows;
      const CHUNK = 1_000_000;
      for (let offset = 0; offset < others; offset += CHUNK) {
        const n = Math.min(CHUNK, others - offset);
        await db.raw(
          `INSERT INTO ?? (event_id, message_kind, message_id, user_id, event_type, variant_id, channel, alias, occurred_at)
           SELECT CONCAT('o-', ? + n), 'campaign', CONCAT('c', LPAD((? + n) % ?, 4, '0')), CONCAT('u', LPAD(((? + n) * 104729) % ?, 7, '0')),
                  ELT(1 + (? + n) % 10, 'received','received','received','received','received','received','opened','opened','clicked','converted'),
                  NULL, 'email', IF((? + n) % 10 = 8, 'cta', NULL), TIMESTAMP('2026-01-01') + INTERVAL ((? + n) % 7776000) SECOND
           FROM ${numbers(6)} s WHERE n < ?`,
          [staging, offset, offset, OTHER_MESSAGES, offset, USERS, offset, offset, offset, n],
        );
        log(`  loaded ${(offset + n + targetRows).toLocaleString('en-US')} rows (${Math.round((Date.now() - t0) / 1000)} s)`);
      }
      log("  copying each message's rows into its own table");
    },
    log,
  );
  const table = await currentHotTable(db, { kind: 'campaign', id: TARGET });
  if (!table) throw new Error(`${TARGET} has no hot table after loading`);
  const expected = indexList(await secondaryIndexes(db, HOT_TABLE_TEMPLATE));
  const actual = indexList(await secondaryIndexes(db, table.name));
  if (JSON.stringify(actual) !== JSON.stringify(expected))
    throw new Error(`indexes of ${table.name} differ from the template's: ${actual.join(' ')} vs ${expected.join(' ')}`);
  log(`  loaded in ${Math.round((Date.now() - t0) / 1000)} s; the target's table ${table.name} has indexes ${actual.join(' ')}`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main(): Promise<void> {
  const base = process.env.BENCH_MYSQL_URL || process.env.MYSQL_URL || DEFAULT_MYSQL_URL;
  const database = `idbench_eval_${randomBytes(3).toString('hex')}`;
  const url = withDatabase(base, database);
  log(
    `evaluate benchmark: ${ROWS.toLocaleString('en-US')} hot rows, ${RECIPIENTS.toLocaleString('en-US')} recipients, database ${database}`,
  );
  log(`load before: ${uptime()}`);
  const db = await openDatabase(url);
  try {
    await db('messages').insert({ kind: 'campaign', id: TARGET, name: 'Benchmark target', status: 'stopped' });
    await load(db);
    // Stopped but not expired: still available (an availability row exists, as for real messages).
    await db('message_availability').insert({ kind: 'campaign', message_id: TARGET, state: 'stopped', available: true, revision: 1 });

    // The evaluate route never calls Temporal: a lazy connection that is never used is enough.
    const connection = Connection.lazy({ address: '127.0.0.1:1' });
    const tokens = new ApiTokenStore(db);
    const { token } = await tokens.create({ name: 'bench-evaluate', scopes: ['messages'] });
    const app = buildApi({
      auth: new BearerAuthenticator(tokens, null),
      lifecycle: new LifecycleClient(new Client({ connection })),
      connection,
      db,
      logger: pino({ level: 'silent' }),
      openapi: false,
      // One client sends every request of the run: its allowance must cover them all (the default is 600 a minute).
      limits: { rateLimitMax: 1_000_000 },
    });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const body = JSON.stringify({ filter: { type: 'received_message_from_campaign', messageId: TARGET }, limit: LIMIT });
    const times: number[] = [];
    let users = 0;
    log(`load during: ${uptime()}`);
    for (let i = 0; i < REQUESTS; i++) {
      const t = process.hrtime.bigint();
      const res = await fetch(`${address}/v1/retargeting/evaluate`, { method: 'POST', headers, body });
      const json = (await res.json()) as { userIds: string[] };
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (res.status !== 200) throw new Error(`evaluate answered ${res.status}: ${JSON.stringify(json)}`);
      users = json.userIds.length;
    }
    // Walking every page once, for scale.
    let cursor: string | null = null;
    let total = 0;
    const walk0 = Date.now();
    do {
      const res = await fetch(`${address}/v1/retargeting/evaluate`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          filter: { type: 'received_message_from_campaign', messageId: TARGET },
          limit: LIMIT,
          ...(cursor ? { cursor } : {}),
        }),
      });
      const json = (await res.json()) as { userIds: string[]; nextCursor: string | null };
      total += json.userIds.length;
      cursor = json.nextCursor;
    } while (cursor);
    const walkMs = Date.now() - walk0;
    await app.close();

    const sorted = [...times].sort((a, b) => a - b);
    const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
    log(`load after: ${uptime()}`);
    console.log('');
    console.log(
      `first page (${users} users of ${RECIPIENTS.toLocaleString('en-US')}), ${REQUESTS} requests over HTTP, ${ROWS.toLocaleString('en-US')} hot rows:`,
    );
    console.log(
      `  first request ${fmt(times[0])}; p50 ${fmt(percentile(sorted, 50))}; p95 ${fmt(percentile(sorted, 95))}; p99 ${fmt(percentile(sorted, 99))}; max ${fmt(sorted[sorted.length - 1])}`,
    );
    console.log(`  all ${total.toLocaleString('en-US')} recipients paged through in ${walkMs} ms (${Math.ceil(total / LIMIT)} pages)`);
    console.log(`  target p95 < 250 ms: ${percentile(sorted, 95) < 250 ? 'met' : 'NOT met'}; ${os.cpus().length} CPUs`);
  } finally {
    if (process.env.BENCH_KEEP !== '1') await db.raw('DROP DATABASE IF EXISTS ??', [database]).catch(() => undefined);
    await db.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
