/**
 * Benchmark: sustained ingestion through POST /v1/interactions, batches of 1,000 events, sent by this
 * process (the load generator) to the API running as a second process (src/api/server.ts, as in
 * production), into MySQL. The generator sends a token of the ingest scope (the message definitions
 * one of the messages scope), so authentication is part of what is measured, as in production.
 *
 *   npm run bench:ingest                          60 s measured after 5 s of warm-up, 6 batches in flight
 *   BENCH_SECONDS=20 npm run bench:ingest         a quick look
 *
 * It starts a private Temporal dev server (message definitions signal their actors; no worker is
 * needed for ingestion) and uses a throwaway database, dropped at the end (BENCH_KEEP=1 keeps it).
 * Environment: BENCH_MYSQL_URL (else MYSQL_URL, else the local default), BENCH_SECONDS, BENCH_WARMUP,
 * BENCH_CONCURRENCY, BENCH_USERS (distinct users events are spread over, default 1,000,000).
 * BENCH_PRIVATE_MYSQL=1 runs a private MariaDB/MySQL server (data in a temporary directory, removed
 * afterwards; buffer pool BENCH_BUFFER_POOL bytes, default 2 GiB, and a 1 GiB redo log) instead, so that
 * other clients of a shared server neither slow the run down nor blur the database server's CPU figure.
 */
import { spawn, execSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { ensureTemporalBinary } from '../scripts/ensureTemporal';
import { ApiTokenStore } from '../src/auth/apiTokens';
import { DEFAULT_MYSQL_URL } from '../src/config';
import { createDb } from '../src/db/knex';
import { ensureLocalMysql, type LocalMysqlHandle } from '../src/db/localMysql';
import { createLogger } from '../src/logger';
import { freePort, startDevServerOnFreePort } from '../src/temporal/devServer';
import { ensureSearchAttributes } from '../src/temporal/searchAttributes';
import { countTableRows, hotTablesOf, withDatabase } from './lib/dataset';
import { parseBytes, sizeLikeProduction } from './lib/server';

const envInt = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const SECONDS = envInt('BENCH_SECONDS', 60);
const WARMUP = envInt('BENCH_WARMUP', 5);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 6);
const USERS = envInt('BENCH_USERS', 1_000_000);
const BATCH = 1000;
const CAMPAIGNS = 20;
const CANVASES = 5;
const ROOT = path.resolve(__dirname, '..');

const log = (msg: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const uptime = () => execSync('uptime').toString().trim();

/** CPU time (user + system) of a process so far, in ms, from /proc (Linux). */
function processCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * (1000 / 100);
  } catch {
    return Number.NaN;
  }
}

function mysqldPid(privateServer: LocalMysqlHandle | null): number {
  if (privateServer) return privateServer.pid;
  try {
    return Number(execSync('pgrep -o -x mariadbd || pgrep -o -x mysqld').toString().trim().split('\n')[0]);
  } catch {
    return Number.NaN;
  }
}

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`the API exited with code ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error('the API did not become healthy within 60 s');
}

const headersFor = (token: string) => ({ 'content-type': 'application/json', authorization: `Bearer ${token}` });

async function post(url: string, token: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: headersFor(token), body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/**
 * A realistic mix: mostly receipts, then opens, clicks, conversions, control group, Canvas entries.
 * Written straight to JSON text: the generator shares the machine's two cores with the API and MySQL,
 * so it should cost as little as it can.
 */
function makeBatch(run: string, seq: { n: number }, baseTime: number): string {
  const parts = new Array<string>(BATCH);
  for (let i = 0; i < BATCH; i++) {
    const n = seq.n++;
    const r = Math.random();
    const head = `{"eventId":"${run}-${n.toString(36)}","userId":"u${Math.floor(Math.random() * USERS)}","occurredAt":"${new Date(baseTime + n).toISOString()}"`;
    if (i % 5 === 0) {
      const canvas = `"messageKind":"canvas","messageId":"canvas-${n % CANVASES}"`;
      const step = `"stepId":"step-${n % 3}"`;
      parts[i] =
        r < 0.7
          ? `${head},"type":"received",${canvas},${step},"channel":"push"}`
          : r < 0.9
            ? `${head},"type":"opened",${canvas},${step},"channel":"push"}`
            : `${head},"type":"entered_variation",${canvas},"variationId":"variation-${n % 2}"}`;
    } else {
      const campaign = `"messageKind":"campaign","messageId":"campaign-${n % CAMPAIGNS}"`;
      const variant = `"variantId":"${n % 2 ? 'a' : 'b'}"`;
      parts[i] =
        r < 0.6
          ? `${head},"type":"received",${campaign},${variant},"channel":"email"}`
          : r < 0.8
            ? `${head},"type":"opened",${campaign},${variant},"channel":"email"}`
            : r < 0.9
              ? `${head},"type":"clicked",${campaign},${variant},"channel":"email","alias":"cta-${n % 4}"}`
              : r < 0.97
                ? `${head},"type":"converted",${campaign},${variant}}`
                : `${head},"type":"control_group",${campaign}}`;
    }
  }
  return `{"events":[${parts.join(',')}]}`;
}

async function postJson(url: string, token: string, text: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: headersFor(token), body: text });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'idbench-ingest-'));
  let privateMysql: LocalMysqlHandle | null = null;
  let base = process.env.BENCH_MYSQL_URL || process.env.MYSQL_URL || DEFAULT_MYSQL_URL;
  if (process.env.BENCH_PRIVATE_MYSQL === '1') {
    base = `mysql://root@127.0.0.1:${await freePort()}/bench`;
    privateMysql = await ensureLocalMysql(base, createLogger('bench', 'warn'), { dataDir: path.join(dir, 'mysql') });
    // Sized as a production server would be for this working set (the defaults are 128 MB and 96 MB,
    // which make InnoDB evict and re-read index pages within a minute of inserts).
    await sizeLikeProduction(withDatabase(base, 'mysql'), {
      bufferPoolBytes: parseBytes(process.env.BENCH_BUFFER_POOL || '2G'),
      redoLogBytes: parseBytes('1G'),
    });
    const admin = createDb(withDatabase(base, 'mysql'), { min: 0, max: 1 });
    const [vars] = (await admin.raw(
      "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('innodb_buffer_pool_size', 'innodb_log_file_size')",
    )) as [{ Variable_name: string; Value: string }[]];
    await admin.destroy();
    log(`private database server, pid ${privateMysql?.pid}; ${vars.map((v) => `${v.Variable_name}=${v.Value}`).join(', ')}`);
  }
  const database = `idbench_ingest_${randomBytes(3).toString('hex')}`;
  const mysqlUrl = withDatabase(base, database);
  log(
    `ingest benchmark: ${SECONDS} s measured after ${WARMUP} s warm-up, ${CONCURRENCY} batches of ${BATCH} in flight, database ${database}`,
  );
  const server = await startDevServerOnFreePort({
    binary: await ensureTemporalBinary(),
    uiPort: null,
    dbFile: path.join(dir, 'temporal.db'),
    logLevel: 'error',
  });
  const connection = await Connection.connect({ address: server.address });
  await ensureSearchAttributes(connection, 'default');
  await connection.close();

  const port = await freePort();
  // BENCH_API_CPU_PROF=<dir> writes a CPU profile of the API process there.
  const profile = process.env.BENCH_API_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_API_CPU_PROF}`] : [];
  const api = spawn(process.execPath, [...profile, '--import', 'tsx', path.join(ROOT, 'src/api/server.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      MYSQL_URL: mysqlUrl,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: 'default',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
      // One load generator sends every batch under one token: its allowance (600 a minute by default) must not be the limit measured.
      API_RATE_LIMIT: '100000000',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const db = createDb(mysqlUrl, { min: 0, max: 2 });
  try {
    await waitHealthy(url, api);
    // The API has migrated the database by now: tokens go straight into its token table.
    const tokens = new ApiTokenStore(db);
    const messagesToken = (await tokens.create({ name: 'bench-messages', scopes: ['messages'] })).token;
    const ingestToken = (await tokens.create({ name: 'bench-ingest', scopes: ['ingest'] })).token;
    for (let c = 0; c < CAMPAIGNS; c++) {
      const res = await post(`${url}/v1/messages`, messagesToken, {
        kind: 'campaign',
        id: `campaign-${c}`,
        name: `Campaign ${c}`,
        tags: ['bench'],
        variants: [
          { id: 'a', name: 'A' },
          { id: 'b', name: 'B' },
        ],
      });
      if (res.status !== 201) throw new Error(`creating campaign-${c}: ${res.status} ${JSON.stringify(res.json)}`);
    }
    for (let c = 0; c < CANVASES; c++) {
      const res = await post(`${url}/v1/messages`, messagesToken, {
        kind: 'canvas',
        id: `canvas-${c}`,
        name: `Canvas ${c}`,
        steps: [0, 1, 2].map((s) => ({ id: `step-${s}`, name: `Step ${s}` })),
        variations: [0, 1].map((v) => ({ id: `variation-${v}`, name: `Variation ${v}` })),
      });
      if (res.status !== 201) throw new Error(`creating canvas-${c}: ${res.status} ${JSON.stringify(res.json)}`);
    }

    const run = randomBytes(4).toString('hex');
    const seq = { n: 0 };
    const baseTime = Date.now() - 3600_000;
    const t0 = Date.now();
    const warmEnd = t0 + WARMUP * 1000;
    const end = warmEnd + SECONDS * 1000;
    let measuredEvents = 0;
    let measuredBatches = 0;
    let stored = 0;
    const latencies: number[] = [];
    let loadDuring = '';
    const worker = async () => {
      for (;;) {
        const now = Date.now();
        if (now >= end) return;
        const body = makeBatch(run, seq, baseTime);
        const started = process.hrtime.bigint();
        const res = await postJson(`${url}/v1/interactions`, ingestToken, body);
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        if (res.status !== 200) throw new Error(`batch refused: ${res.status} ${JSON.stringify(res.json).slice(0, 500)}`);
        stored += Number(res.json.stored);
        const done = Date.now();
        if (now >= warmEnd && done <= end) {
          measuredEvents += BATCH;
          measuredBatches += 1;
          latencies.push(ms);
        }
        if (!loadDuring && done > warmEnd + (SECONDS * 1000) / 2) loadDuring = uptime();
      }
    };
    log(`load before: ${uptime()}`);
    // CPU spent over the measured window by the API process, the database server (which also serves
    // anyone else using it) and this load generator: the cost of an event, whatever else runs here.
    const mysqld = mysqldPid(privateMysql);
    type CpuSample = { api: number; db: number; gen: number; at: number };
    let cpuStart: CpuSample | null = null;
    let cpuEnd: CpuSample | null = null;
    const sample = () => ({
      api: processCpuMs(api.pid ?? -1),
      db: processCpuMs(mysqld),
      gen: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
      at: Date.now(),
    });
    const startTimer = setTimeout(() => (cpuStart = sample()), warmEnd - Date.now());
    const endTimer = setTimeout(() => (cpuEnd = sample()), end - Date.now());
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    clearTimeout(startTimer);
    clearTimeout(endTimer);
    const rate = measuredEvents / SECONDS;

    const count = async (sql: string) => Number(((await db.raw(sql)) as [{ n: number | string }[]])[0][0].n);
    // Each message's rows are in its own table (src/storage/hotTables.ts).
    const rows = await countTableRows(db, await hotTablesOf(db));
    const ledger = await count('SELECT COUNT(*) AS n FROM ingested_events');
    const analytics = await count('SELECT SUM(count) AS n FROM message_analytics');
    const users = await count('SELECT COUNT(*) AS n FROM users');
    latencies.sort((a, b) => a - b);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)].toFixed(0);
    log(`load during: ${loadDuring}`);
    log(`load after: ${uptime()}`);
    console.log('');
    console.log(
      `sustained: ${Math.round(rate).toLocaleString('en-US')} events/s over ${SECONDS} s (${measuredBatches} batches of ${BATCH}, ${CONCURRENCY} in flight)`,
    );
    console.log(`batch latency: p50 ${p(0.5)} ms, p95 ${p(0.95)} ms, p99 ${p(0.99)} ms`);
    console.log(
      `stored ${stored.toLocaleString('en-US')} events in all; hot rows ${rows.toLocaleString('en-US')}, ledger ${ledger.toLocaleString('en-US')}, analytics total ${analytics.toLocaleString('en-US')}, users ${users.toLocaleString('en-US')}`,
    );
    if (rows !== stored || ledger !== stored || analytics !== stored)
      throw new Error('row counts do not match what the API reported as stored');
    if (cpuStart && cpuEnd) {
      const a: CpuSample = cpuStart;
      const b: CpuSample = cpuEnd;
      const per = (x: number) => ((x / measuredEvents) * 1000).toFixed(1);
      const apiMs = b.api - a.api;
      const dbMs = b.db - a.db;
      const genMs = b.gen - a.gen;
      console.log(
        `CPU per 1,000 events: API ${per(apiMs)} ms, MySQL server ${per(dbMs)} ms ${privateMysql ? '(private server)' : '(includes its other clients)'}, load generator ${per(genMs)} ms`,
      );
      const serviceMs = apiMs + dbMs;
      console.log(
        `  API + MySQL: ${per(serviceMs)} ms per 1,000 events, so two otherwise idle cores would carry about ${Math.round((2 * 1000 * measuredEvents) / serviceMs).toLocaleString('en-US')} events/s`,
      );
    }
    console.log(`target >= 20,000 events/s: ${rate >= 20_000 ? 'met' : 'NOT met'}; ${os.cpus().length} CPUs`);
  } finally {
    api.kill('SIGTERM');
    await new Promise((r) => (api.exitCode !== null ? r(null) : api.once('exit', r)));
    if (process.env.BENCH_KEEP !== '1') await db.raw('DROP DATABASE IF EXISTS ??', [database]).catch(() => undefined);
    await db.destroy();
    await server.stop();
    await privateMysql?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
