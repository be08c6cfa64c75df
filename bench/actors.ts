/**
 * Benchmark 5: many actors, each with its own rows, taken through stop, expiry and restore with a TTL
 * of seconds. Every actor must reach its end state; the report gives actors per minute for each
 * phase, the Temporal history length per actor (all runs, continue-as-new included) and the worker's
 * peak memory.
 *
 *   npm run bench:actors                          10,000 actors × 100 rows
 *   BENCH_ACTORS=1000 npm run bench:actors        a quick look
 *
 * Phase 1 runs a worker with INTERACTION_DATA_TTL=BENCH_ACTOR_TTL (default 10 seconds) and stops every
 * actor: each expires and archives its rows. Phase 2 runs a worker with a TTL of 30 days (as an
 * operator would restore data meant to stay) and restores every actor.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  hotRowsLike,
  createBenchDatabase,
  forEachLimited,
  hotTablesOf,
  loadIntoHotTables,
  tablesFingerprint,
  type BenchDatabase,
} from './lib/dataset';
import { cpuSeconds, fmtInt, fmtMB, readMemory, uptimeLine } from './lib/proc';
import { envInt, exitWhenSettled, log, saveResults, table, verdict } from './lib/report';
import { runOnBenchServer, type BenchServer } from './lib/server';
import { resetStickiness, spawnBenchWorker, startBenchTemporal, waitForStatus, type BenchTemporal, type BenchWorker } from './lib/stack';
import type { MessageRef } from '../src/shared/types';

interface PhaseFigures {
  actors: number;
  seconds: number;
  actorsPerMinute: number;
  workerPeakRss: number;
  workerIdleRss: number;
  dbCpuSeconds: number | null;
  workerCpuSeconds: number;
}

export interface ActorsResult {
  server: string;
  actors: number;
  rowsEach: number;
  ttl: string;
  expire: PhaseFigures;
  restore: PhaseFigures;
  history: { min: number; median: number; p95: number; max: number; runsMax: number; actorsSeen: number; sampled: number };
  uptimeBefore: string;
  uptimeAfter: string;
  markdown: string;
}

const CONCURRENCY = 32;

function refOf(i: number): MessageRef {
  return { kind: i % 2 ? 'canvas' : 'campaign', id: `actor-${i}` };
}

/** The actors' hot rows, in every table they are in (each actor's table holds its rows only). */
async function actorsFingerprint(bench: BenchDatabase): Promise<string> {
  return tablesFingerprint(bench.db, await hotTablesOf(bench.db, 'actor-%'));
}

async function countWhere(bench: BenchDatabase, sql: string): Promise<number> {
  const [rows] = (await bench.db.raw(sql)) as [{ n: string | number }[]];
  return Number(rows[0].n);
}

async function runPhase(
  temporal: BenchTemporal,
  bench: BenchDatabase,
  server: BenchServer,
  ttl: string,
  name: string,
  actors: number,
  signal: (ref: MessageRef) => Promise<void>,
  reached: () => Promise<number>,
  timeoutMs: number,
): Promise<PhaseFigures> {
  const worker: BenchWorker = spawnBenchWorker({ temporalAddress: temporal.address, mysqlUrl: bench.url, ttl, chunkRows: 5000 });
  try {
    const warm: MessageRef = { kind: 'campaign', id: `warm-up-${randomBytes(4).toString('hex')}` };
    await temporal.lifecycle.stop(warm.kind, warm.id);
    await waitForStatus(temporal.lifecycle, warm, () => true, 120_000, 200);
    const pid = worker.child.pid ?? -1;
    const idle = readMemory(pid);
    worker.memory.resetPeak();
    const db0 = server.pid ? cpuSeconds(server.pid) : NaN;
    const w0 = cpuSeconds(pid);
    const started = performance.now();
    const refs = Array.from({ length: actors }, (_, i) => refOf(i));
    let sent = 0;
    await forEachLimited(refs, CONCURRENCY, async (ref) => {
      await signal(ref);
      sent += 1;
      if (sent % 2000 === 0) log(`  ${name}: ${fmtInt(sent)} signals sent`);
    });
    log(`  ${name}: all ${fmtInt(actors)} signalled after ${((performance.now() - started) / 1000).toFixed(0)} s`);
    const deadline = Date.now() + timeoutMs;
    let done = 0;
    let lastLog = 0;
    for (;;) {
      done = await reached();
      if (done >= actors) break;
      if (Date.now() > deadline)
        throw new Error(`${name}: only ${done} of ${actors} actors reached the end state in ${timeoutMs / 60_000} min`);
      if (Date.now() - lastLog > 15_000) {
        log(`  ${name}: ${fmtInt(done)} / ${fmtInt(actors)} done, worker RSS ${fmtMB(readMemory(pid)?.rss ?? 0)}`);
        lastLog = Date.now();
      }
      await sleep(1_000);
    }
    const seconds = (performance.now() - started) / 1000;
    const dbCpu = server.pid ? cpuSeconds(server.pid) - db0 : NaN;
    const workerCpu = cpuSeconds(pid) - w0;
    const mem = worker.memory.stop();
    log(
      `  ${name}: ${fmtInt(actors)} actors in ${seconds.toFixed(0)} s (${fmtInt((actors / seconds) * 60)} per minute), worker peak ${fmtMB(mem.hwm)}`,
    );
    return {
      actors,
      seconds,
      actorsPerMinute: (actors / seconds) * 60,
      workerPeakRss: Math.max(mem.hwm, mem.peakRss),
      workerIdleRss: idle?.rss ?? 0,
      dbCpuSeconds: Number.isNaN(dbCpu) ? null : dbCpu,
      workerCpuSeconds: workerCpu,
    };
  } finally {
    await worker.stop();
    // The next phase runs a new worker: without this, each actor's first task (a status query
    // included) would wait for the stopped worker's sticky queue to time out.
    await forEachLimited(
      Array.from({ length: actors }, (_, i) => refOf(i)),
      CONCURRENCY,
      (ref) => resetStickiness(temporal.client, ref),
    );
  }
}

/**
 * Events per actor over all its runs (continue-as-new included): the runs are listed from visibility,
 * and each run's length is read with DescribeWorkflowExecution (visibility's own count lags). For
 * many actors a random sample of BENCH_HISTORY_SAMPLE (default 500) is described.
 */
async function historyLengths(temporal: BenchTemporal): Promise<ActorsResult['history']> {
  const runs = new Map<string, string[]>();
  for await (const wf of temporal.client.workflow.list({ query: `WorkflowType = 'interactionDataLifecycle'` })) {
    if (!/^interaction-data:(campaign|canvas):actor-/.test(wf.workflowId)) continue;
    runs.set(wf.workflowId, [...(runs.get(wf.workflowId) ?? []), wf.runId]);
  }
  const ids = [...runs.keys()];
  const sampleSize = Math.min(ids.length, envInt('BENCH_HISTORY_SAMPLE', 500));
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const sample = ids.slice(0, sampleSize);
  const events: number[] = [];
  await forEachLimited(sample, CONCURRENCY, async (workflowId) => {
    let total = 0;
    for (const runId of runs.get(workflowId) ?? [])
      total += (await temporal.client.workflow.getHandle(workflowId, runId).describe()).historyLength;
    events.push(total);
  });
  events.sort((a, b) => a - b);
  const at = (q: number) => events[Math.min(events.length - 1, Math.floor(q * events.length))] ?? 0;
  return {
    min: events[0] ?? 0,
    median: at(0.5),
    p95: at(0.95),
    max: events[events.length - 1] ?? 0,
    runsMax: Math.max(0, ...[...runs.values()].map((r) => r.length)),
    actorsSeen: runs.size,
    sampled: sample.length,
  };
}

export async function actorsBench(server: BenchServer): Promise<ActorsResult> {
  const actors = envInt('BENCH_ACTORS', 10_000);
  const rowsEach = envInt('BENCH_ACTOR_ROWS', 100);
  const ttl = process.env.BENCH_ACTOR_TTL || '10 seconds';
  const timeoutMs = envInt('BENCH_ACTOR_TIMEOUT_MIN', 120) * 60_000;
  const uptimeBefore = uptimeLine();
  log(`actor benchmark: ${fmtInt(actors)} actors × ${rowsEach} rows, TTL ${ttl}`);
  log(uptimeBefore);
  log(`server: ${server.description}`);
  const bench = await createBenchDatabase(server.url, `bench_actors_${randomBytes(3).toString('hex')}`);
  const temporal = await startBenchTemporal();
  try {
    // Rows of every actor, written by the database (one statement per 1,000 actors), then copied into
    // each actor's own table, where ingestion would have put them.
    await loadIntoHotTables(
      bench.db,
      async (staging) => {
        for (let from = 0; from < actors; from += 1000) {
          const to = Math.min(actors, from + 1000) - 1;
          await bench.db.raw(`
          INSERT INTO \`${staging}\` (event_id, message_kind, message_id, user_id, event_type, variant_id, step_id, alias, channel, occurred_at)
          SELECT UUID(), IF(a.seq % 2 = 1, 'canvas', 'campaign'), CONCAT('actor-', a.seq),
                 SUBSTR(MD5(CONCAT('user-', (a.seq * 7919 + r.seq) % 50000)), 1, 24),
                 ELT(1 + r.seq % 4, 'received', 'opened', 'clicked', 'converted'),
                 IF(a.seq % 2 = 0, CONCAT('variant-', r.seq % 2), NULL), IF(a.seq % 2 = 1, CONCAT('step-', r.seq % 3), NULL),
                 IF(r.seq % 4 = 2, 'cta', NULL), 'email', TIMESTAMPADD(SECOND, a.seq * 100 + r.seq, TIMESTAMP'2026-01-01 00:00:00')
            FROM seq_${from}_to_${to} a JOIN seq_1_to_${rowsEach} r`);
        }
      },
      log,
    );
    const fingerprint = await actorsFingerprint(bench);
    log(`seeded ${fmtInt(actors * rowsEach)} rows`);

    const expire = await runPhase(
      temporal,
      bench,
      server,
      ttl,
      'stop → expired',
      actors,
      async (ref) => {
        await temporal.lifecycle.stop(ref.kind, ref.id);
      },
      () => countWhere(bench, "SELECT COUNT(*) AS n FROM message_availability WHERE message_id LIKE 'actor-%' AND state = 'expired'"),
      timeoutMs,
    );
    const hotLeft = await hotRowsLike(bench.db, 'actor-%');
    const archived = await countWhere(
      bench,
      "SELECT COALESCE(SUM(row_count), 0) AS n FROM archive_manifests WHERE message_id LIKE 'actor-%' AND status = 'archived'",
    );
    if (hotLeft !== 0 || archived !== actors * rowsEach) throw new Error(`after expiry: ${hotLeft} hot rows left, ${archived} archived`);

    const restore = await runPhase(
      temporal,
      bench,
      server,
      '30 days',
      'restore → stopped',
      actors,
      async (ref) => {
        const r = await temporal.lifecycle.restore(ref.kind, ref.id, { requestedBy: 'bench@example.com' });
        if (!r.accepted) throw new Error(`${ref.id}: restore not accepted (already available?)`);
      },
      // Done when restored and e-mailed: the e-mail is the actor's last step of a restore.
      async () =>
        Math.min(
          await countWhere(
            bench,
            "SELECT COUNT(*) AS n FROM message_availability a JOIN archive_manifests m ON m.message_kind = a.kind AND m.message_id = a.message_id AND m.generation = a.generation WHERE a.message_id LIKE 'actor-%' AND a.state = 'stopped' AND m.status = 'restored'",
          ),
          await countWhere(bench, "SELECT COUNT(*) AS n FROM email_outbox WHERE idempotency_key LIKE '%/actor-%'"),
        ),
      timeoutMs,
    );
    const after = await actorsFingerprint(bench);
    if (after !== fingerprint) throw new Error(`rows after restore differ: ${after} vs ${fingerprint}`);
    const emails = await countWhere(bench, "SELECT COUNT(*) AS n FROM email_outbox WHERE idempotency_key LIKE '%/actor-%'");
    log(`all rows back and identical; ${fmtInt(emails)} restore e-mails in the outbox`);

    const history = await historyLengths(temporal);
    const uptimeAfter = uptimeLine();
    log(uptimeAfter);
    const cpu = (p: PhaseFigures) => `${p.dbCpuSeconds === null ? '?' : p.dbCpuSeconds.toFixed(0)} + ${p.workerCpuSeconds.toFixed(0)}`;
    const markdown = [
      `Server: ${server.description}. ${fmtInt(actors)} actors × ${rowsEach} rows (${fmtInt(actors * rowsEach)} rows), INTERACTION_DATA_TTL=${ttl}; one worker process, default Temporal dev server (SQLite).`,
      '',
      table(
        ['phase', 'actors', 'seconds', 'actors/minute', 'worker peak RSS', 'worker idle RSS before', 'CPU s (MariaDB + worker)'],
        [
          [
            'stop → expired (archived)',
            fmtInt(expire.actors),
            expire.seconds.toFixed(0),
            fmtInt(expire.actorsPerMinute),
            fmtMB(expire.workerPeakRss),
            fmtMB(expire.workerIdleRss),
            cpu(expire),
          ],
          [
            'restore → stopped (restored, e-mailed)',
            fmtInt(restore.actors),
            restore.seconds.toFixed(0),
            fmtInt(restore.actorsPerMinute),
            fmtMB(restore.workerPeakRss),
            fmtMB(restore.workerIdleRss),
            cpu(restore),
          ],
        ],
      ),
      '',
      `History events per actor over all its runs (${fmtInt(history.sampled)} actors described): min ${history.min}, median ${history.median}, p95 ${history.p95}, max ${history.max}; at most ${history.runsMax} run(s) per actor (continue-as-new); ${fmtInt(history.actorsSeen)} actors seen in visibility.`,
      '',
      table(
        ['check', 'result'],
        [
          ['every actor expired, all rows archived, none left hot', verdict(true)],
          ['every actor restored and stopped, rows identical (SQL fingerprint), one e-mail each', verdict(emails === actors)],
        ],
      ),
      '',
      `Load: before \`${uptimeBefore}\`; after \`${uptimeAfter}\`.`,
    ].join('\n');
    const result: ActorsResult = {
      server: server.description,
      actors,
      rowsEach,
      ttl,
      expire,
      restore,
      history,
      uptimeBefore,
      uptimeAfter,
      markdown,
    };
    log(`results: ${saveResults('actors', result)}`);
    return result;
  } finally {
    await temporal.close();
    if (!process.env.BENCH_KEEP) await bench.drop();
  }
}

if (require.main === module) exitWhenSettled(runOnBenchServer(actorsBench), 'bench:actors');
