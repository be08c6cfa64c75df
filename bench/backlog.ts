/**
 * The rollout backlog: the policy switched on over years of history. BENCH_BACKLOG_MESSAGES messages
 * (default 100,000) of BENCH_BACKLOG_ROWS rows each (default 3), every one stopped long before the TTL,
 * all due at once when the worker starts, while ingestion keeps writing events of other messages beside
 * them. Every message must archive exactly once (generation 1, its rows, none left hot).
 *
 *   npm run bench:backlog
 *   BENCH_BACKLOG_MESSAGES=5000 npm run bench:backlog      a quick look
 *
 * Reported: actors per minute; worker peak RSS; CPU seconds per actor of MariaDB, the Temporal dev
 * server and the worker; history events per actor; ingestion at a steady BENCH_BACKLOG_INGEST_RATE
 * (default 1,000 events/s) before the worker starts and while the backlog drains (its pace and batch p95);
 * and what an expired actor costs afterwards while nothing arrives: whether a timer is pending (one that
 * wakes it every cleanup interval for a sweep) and its history events over 30 s.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ingestEvents } from '../src/dataplane/ingest/ingest';
import { lifecycleWorkflowId } from '../src/shared/workflowId';
import type { MessageRef } from '../src/shared/types';
import { createBenchDatabase, forEachLimited, hotRowsLike, loadIntoHotTables, type BenchDatabase } from './lib/dataset';
import { cpuSeconds, fmtInt, fmtMB, readMemory, uptimeLine } from './lib/proc';
import { envInt, exitWhenSettled, log, saveResults, table, verdict } from './lib/report';
import { runOnBenchServer, type BenchServer } from './lib/server';
import { countOf, dueRef, liveEvents, seedDueRows, startDueActors } from './lib/dueBacklog';
import { spawnBenchWorker, startBenchTemporal, type BenchTemporal } from './lib/stack';

const CONCURRENCY = 32;
const PREFIX = 'backlog-';
/** Seconds the idle actors are watched for after the drain. */
const IDLE_WATCH_SECONDS = 30;

const refOf = (i: number): MessageRef => dueRef(PREFIX, i);

interface IngestFigures {
  events: number;
  seconds: number;
  /** 95th percentile of a batch's ingestion, ms. */
  p95Ms: number;
}

/**
 * Ingestion of other (live) messages at `rate` events/s (batches of `batch`) until stopped: a platform's
 * steady traffic, which must keep its pace while the backlog drains.
 */
function ingestBeside(bench: BenchDatabase, batch: number, rate: number): { stop(): Promise<IngestFigures> } {
  let stopped = false;
  let events = 0;
  let seq = 0;
  const took: number[] = [];
  const started = performance.now();
  const run = (async () => {
    while (!stopped) {
      const due = started + ((events + batch) / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const list = liveEvents(seq, batch);
      seq += batch;
      const t = performance.now();
      events += (await ingestEvents(bench.db, list)).stored;
      took.push(performance.now() - t);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await run;
      took.sort((a, b) => a - b);
      return { events, seconds: (performance.now() - started) / 1000, p95Ms: took[Math.floor(took.length * 0.95)] ?? 0 };
    },
  };
}

interface ActorHistory {
  /** Events over all its runs. */
  events: number;
  /** A timer started in its latest run and not yet fired or cancelled: it will wake on its own. */
  timerPending: boolean;
}

/** History of a sample of actors: events over all their runs, and whether the latest run has a timer pending. */
async function actorHistories(temporal: BenchTemporal, refs: readonly MessageRef[]): Promise<ActorHistory[]> {
  const out: ActorHistory[] = [];
  await forEachLimited(refs, CONCURRENCY, async (ref) => {
    let events = 0;
    for await (const wf of temporal.client.workflow.list({ query: `WorkflowId = '${lifecycleWorkflowId(ref)}'` })) {
      events += (await temporal.client.workflow.getHandle(wf.workflowId, wf.runId).describe()).historyLength;
    }
    const history = await temporal.client.workflow.getHandle(lifecycleWorkflowId(ref)).fetchHistory();
    let timers = 0;
    for (const e of history.events ?? []) {
      if (e.timerStartedEventAttributes) timers += 1;
      if (e.timerFiredEventAttributes || e.timerCanceledEventAttributes) timers -= 1;
    }
    out.push({ events, timerPending: timers > 0 });
  });
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export async function backlogBench(server: BenchServer) {
  const messages = envInt('BENCH_BACKLOG_MESSAGES', 100_000);
  const rowsEach = envInt('BENCH_BACKLOG_ROWS', 3);
  const ingestBatch = envInt('BENCH_BACKLOG_INGEST_BATCH', 200);
  const ingestRate = envInt('BENCH_BACKLOG_INGEST_RATE', 1000);
  // Long against the drain, as a day is in production: the drain is measured, not the sweeps after it.
  const cleanupInterval = process.env.BENCH_BACKLOG_CLEANUP || '1 hour';
  const timeoutMs = envInt('BENCH_BACKLOG_TIMEOUT_MIN', 240) * 60_000;
  const uptimeBefore = uptimeLine();
  log(`backlog benchmark: ${fmtInt(messages)} messages × ${rowsEach} rows, all due at once`);
  log(`server: ${server.description}`);
  const bench = await createBenchDatabase(server.url, `bench_backlog_${randomBytes(3).toString('hex')}`);
  const temporal = await startBenchTemporal();
  try {
    const seedStarted = performance.now();
    await loadIntoHotTables(
      bench.db,
      async (staging) => {
        await seedDueRows(bench.db, staging, PREFIX, messages, rowsEach);
      },
      log,
    );
    log(
      `seeded ${fmtInt(messages * rowsEach)} rows of ${fmtInt(messages)} messages in ${((performance.now() - seedStarted) / 1000).toFixed(0)} s`,
    );

    // Every actor started by its stop signal, dated a year back, before any worker runs: all are due at once.
    const signalStarted = performance.now();
    await startDueActors(
      temporal,
      Array.from({ length: messages }, (_, i) => refOf(i)),
      CONCURRENCY,
      (sent) => sent % 10_000 === 0 && log(`  ${fmtInt(sent)} actors started with their stop`),
    );
    log(`all ${fmtInt(messages)} actors started in ${((performance.now() - signalStarted) / 1000).toFixed(0)} s`);

    const alone = ingestBeside(bench, ingestBatch, ingestRate);
    await sleep(30_000);
    const aloneFigures = await alone.stop();
    const aloneRate = aloneFigures.events / aloneFigures.seconds;
    log(`ingestion alone: ${fmtInt(aloneRate)} events/s, p95 ${aloneFigures.p95Ms.toFixed(0)} ms per batch of ${ingestBatch}`);

    const worker = spawnBenchWorker({
      temporalAddress: temporal.address,
      mysqlUrl: bench.url,
      ttl: '3 months',
      cleanupInterval,
      chunkRows: 5000,
    });
    const pid = worker.child.pid ?? -1;
    const db0 = server.pid ? cpuSeconds(server.pid) : NaN;
    const t0 = temporal.server.pid ? cpuSeconds(temporal.server.pid) : NaN;
    const w0 = cpuSeconds(pid);
    const started = performance.now();
    const beside = ingestBeside(bench, ingestBatch, ingestRate);
    const deadline = Date.now() + timeoutMs;
    let lastLog = 0;
    let done = 0;
    let besideFigures: IngestFigures;
    try {
      for (;;) {
        done = await countOf(
          bench.db,
          `SELECT COUNT(*) AS n FROM message_availability WHERE message_id LIKE '${PREFIX}%' AND state = 'expired'`,
        );
        if (done >= messages) break;
        if (Date.now() > deadline) throw new Error(`only ${done} of ${messages} expired in ${timeoutMs / 60_000} min`);
        if (Date.now() - lastLog > 30_000) {
          const minutes = (performance.now() - started) / 60_000;
          log(
            `  ${fmtInt(done)} / ${fmtInt(messages)} expired (${fmtInt(done / minutes)}/min), worker RSS ${fmtMB(readMemory(pid)?.rss ?? 0)}`,
          );
          lastLog = Date.now();
        }
        await sleep(1_000);
      }
    } finally {
      besideFigures = await beside.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    const dbCpu = server.pid ? cpuSeconds(server.pid) - db0 : NaN;
    const temporalCpu = temporal.server.pid ? cpuSeconds(temporal.server.pid) - t0 : NaN;
    const workerCpu = cpuSeconds(pid) - w0;
    const besideRate = besideFigures.events / besideFigures.seconds;
    const perMinute = (messages / seconds) * 60;
    log(
      `${fmtInt(messages)} expired in ${seconds.toFixed(0)} s: ${fmtInt(perMinute)}/min; ingestion beside ${fmtInt(besideRate)} events/s`,
    );

    // Exactly once: one generation each, every row archived, none hot.
    const generations = await countOf(bench.db, `SELECT COUNT(*) AS n FROM archive_manifests WHERE message_id LIKE '${PREFIX}%'`);
    const second = await countOf(
      bench.db,
      `SELECT COUNT(*) AS n FROM archive_manifests WHERE message_id LIKE '${PREFIX}%' AND generation <> 1`,
    );
    const archived = await countOf(
      bench.db,
      `SELECT SUM(row_count) AS n FROM archive_manifests WHERE message_id LIKE '${PREFIX}%' AND status = 'archived'`,
    );
    const hotLeft = await hotRowsLike(bench.db, `${PREFIX}%`);
    const exactlyOnce = generations === messages && second === 0 && archived === messages * rowsEach && hotLeft === 0;

    // What an expired actor costs while nothing arrives: a pending timer wakes it every cleanup interval.
    const sample = Array.from({ length: Math.min(200, messages) }, () => refOf(Math.floor(Math.random() * messages)));
    await sleep(5_000);
    const h0 = await actorHistories(temporal, sample);
    await sleep(IDLE_WATCH_SECONDS * 1000);
    const h1 = await actorHistories(temporal, sample);
    const idleEvents = (sum(h1.map((h) => h.events)) - sum(h0.map((h) => h.events))) / sample.length;
    const withTimer = h1.filter((h) => h.timerPending).length;
    const mem = await worker.stop();
    log(
      `idle: ${withTimer} of ${sample.length} expired actors with a timer pending; ${idleEvents.toFixed(2)} history events each in ${IDLE_WATCH_SECONDS} s`,
    );

    const uptimeAfter = uptimeLine();
    const result = {
      server: server.description,
      messages,
      rowsEach,
      seconds,
      actorsPerMinute: perMinute,
      workerPeakRss: Math.max(mem.hwm, mem.peakRss),
      cpuSecondsPerActor: {
        mysql: Number.isNaN(dbCpu) ? null : dbCpu / messages,
        temporal: Number.isNaN(temporalCpu) ? null : temporalCpu / messages,
        worker: workerCpu / messages,
      },
      cleanupInterval,
      historyEventsPerActor: { median: median(h1.map((h) => h.events)) },
      idle: { sampled: sample.length, timerPending: withTimer, historyEventsPerActor: idleEvents, watchedSeconds: IDLE_WATCH_SECONDS },
      ingestion: {
        targetEventsPerSecond: ingestRate,
        alone: { eventsPerSecond: aloneRate, p95Ms: aloneFigures.p95Ms },
        beside: { eventsPerSecond: besideRate, p95Ms: besideFigures.p95Ms },
      },
      exactlyOnce,
      uptimeBefore,
      uptimeAfter,
    };
    const ms = (x: number | null) => (x === null ? '?' : (x * 1000).toFixed(1));
    const markdown = [
      `Server: ${server.description}. ${fmtInt(messages)} messages × ${rowsEach} rows, stopped a year back, all due when the worker starts; one worker (defaults, CLEANUP_INTERVAL=${cleanupInterval}), ${temporal.description}.`,
      '',
      table(
        [
          'actors/minute',
          'worker peak RSS',
          'CPU ms per actor (MariaDB / Temporal / worker)',
          'history events per actor (median)',
          `ingestion at ${fmtInt(ingestRate)}/s: alone → beside (events/s, p95 ms per batch)`,
        ],
        [
          [
            fmtInt(perMinute),
            fmtMB(result.workerPeakRss),
            `${ms(result.cpuSecondsPerActor.mysql)} / ${ms(result.cpuSecondsPerActor.temporal)} / ${ms(result.cpuSecondsPerActor.worker)}`,
            String(result.historyEventsPerActor.median),
            `${fmtInt(aloneRate)} (${aloneFigures.p95Ms.toFixed(0)}) → ${fmtInt(besideRate)} (${besideFigures.p95Ms.toFixed(0)})`,
          ],
        ],
      ),
      '',
      table(
        ['check', 'result'],
        [
          ['every message archived once (generation 1, all rows, none hot)', verdict(exactlyOnce)],
          [
            `expired actors asleep: ${withTimer} of ${sample.length} with a timer pending, ${idleEvents.toFixed(2)} history events each in ${IDLE_WATCH_SECONDS} s`,
            verdict(withTimer === 0 && idleEvents === 0),
          ],
        ],
      ),
    ].join('\n');
    log(`results: ${saveResults('backlog', { ...result, markdown })}`);
    if (!exactlyOnce)
      throw new Error(`not exactly once: ${generations} generations (${second} not 1), ${archived} rows archived, ${hotLeft} hot`);
    return { ...result, markdown };
  } finally {
    await temporal.close();
    if (!process.env.BENCH_KEEP) await bench.drop();
  }
}

if (require.main === module) exitWhenSettled(runOnBenchServer(backlogBench), 'bench:backlog');
