/**
 * The brake: does a backlog of due messages draining leave ingestion its throughput? Ingestion runs
 * flat out (BENCH_BRAKE_WRITERS concurrent writers of BENCH_BRAKE_BATCH events each) alone, then while
 * BENCH_BRAKE_MESSAGES (default 1,000) due messages of BENCH_BRAKE_ROWS rows each (default 500) drain,
 * once with the worker's defaults (the brake: WORKER_MOVE_SLOTS, MOVE_NICE_RATIO,
 * MOVE_MAX_THREADS_RUNNING) and once without it (64 move slots, no nice ratio, no load limit).
 * Ingestion alone is measured before each drain, so a drift of the machine shows.
 *
 *   npm run bench:brake
 *   BENCH_BRAKE_MESSAGES=200 npm run bench:brake        a quick look
 *   WORKER_MOVES_PER_SECOND=1.3 BENCH_BRAKE_SETS=braked npm run bench:brake    one paced drain, no comparison
 *
 * Reported: events/s alone (before and after) and beside each drain, the ratio of beside to the mean of
 * the two alone figures (the target: at least 0.8 with the brake; the live tables grow by everything
 * ingested beside a drain, which slows ingestion by itself), how long each drain took, and that every
 * message archived exactly once.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ingestEvents } from '../src/dataplane/ingest/ingest';
import { loadConfig } from '../src/config';
import { createBenchDatabase, hotRowsLike, loadIntoHotTables, type BenchDatabase } from './lib/dataset';
import { cpuSeconds, fmtInt, uptimeLine } from './lib/proc';
import { envInt, exitWhenSettled, log, saveResults, table, verdict } from './lib/report';
import { runOnBenchServer, type BenchServer } from './lib/server';
import { countOf, dueRef, liveEvents, seedDueRows, startDueActors } from './lib/dueBacklog';
import { spawnBenchWorker, startBenchTemporal } from './lib/stack';

const SIGNALS_AT_ONCE = 32;

interface Throughput {
  events: number;
  seconds: number;
  eventsPerSecond: number;
}

/** Ingestion flat out: `writers` loops, each storing a batch as soon as its last one is in. */
function ingestFlatOut(bench: BenchDatabase, writers: number, batch: number): { stop(): Promise<Throughput> } {
  let stopped = false;
  let events = 0;
  let seq = 0;
  const started = performance.now();
  const loops = Array.from({ length: writers }, async () => {
    while (!stopped) {
      const list = liveEvents(seq, batch);
      seq += batch;
      events += (await ingestEvents(bench.db, list)).stored;
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      const seconds = (performance.now() - started) / 1000;
      return { events, seconds, eventsPerSecond: events / seconds };
    },
  };
}

/** Cores each process kept busy over a phase: where the machine's two cores went. */
interface CoresBusy {
  mysql: number | null;
  temporal: number | null;
  worker: number | null;
  ingestion: number;
}

function cpuMeter(pids: { mysql: number | null; temporal: number | null; worker: number | null }): { stop(): CoresBusy } {
  const read = (pid: number | null) => (pid ? cpuSeconds(pid) : NaN);
  const own = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const t0 = performance.now();
  const start = { mysql: read(pids.mysql), temporal: read(pids.temporal), worker: read(pids.worker), ingestion: own() };
  return {
    stop() {
      const seconds = (performance.now() - t0) / 1000;
      const busy = (now: number, then: number) => (Number.isNaN(now - then) ? null : (now - then) / seconds);
      return {
        mysql: busy(read(pids.mysql), start.mysql),
        temporal: busy(read(pids.temporal), start.temporal),
        worker: busy(read(pids.worker), start.worker),
        ingestion: (own() - start.ingestion) / seconds,
      };
    },
  };
}

const cores = (c: CoresBusy) => [c.mysql, c.temporal, c.worker, c.ingestion].map((x) => (x === null ? '–' : x.toFixed(2))).join(' / ');

interface DrainFigures {
  coresAlone: CoresBusy;
  coresBeside: CoresBusy;
  label: string;
  env: Record<string, string>;
  alone: Throughput;
  /**
   * Ingestion alone again once the drain is over: the live tables grew by everything ingested beside it,
   * which slows ingestion by itself, so the ratio's baseline is the mean of the two.
   */
  aloneAfter: Throughput;
  beside: Throughput;
  /** Beside over the mean of alone before and after. */
  ratio: number;
  drainSeconds: number;
  exactlyOnce: boolean;
  /** Messages expired when the drain ended: all of them, unless BENCH_BRAKE_TIMEOUT_MIN cut it short. */
  expired: number;
}

export async function brakeBench(server: BenchServer) {
  const messages = envInt('BENCH_BRAKE_MESSAGES', 1000);
  const rowsEach = envInt('BENCH_BRAKE_ROWS', 500);
  const writers = envInt('BENCH_BRAKE_WRITERS', 4);
  const batch = envInt('BENCH_BRAKE_BATCH', 200);
  const aloneSeconds = envInt('BENCH_BRAKE_ALONE_SECONDS', 45);
  const settleSeconds = envInt('BENCH_BRAKE_SETTLE_SECONDS', 30);
  const timeoutMs = envInt('BENCH_BRAKE_TIMEOUT_MIN', 60) * 60_000;
  // The brake as this environment configures it (the worker inherits it), the defaults where it says nothing.
  const brake = loadConfig(process.env);
  const uptimeBefore = uptimeLine();
  log(`brake benchmark: ${fmtInt(messages)} due messages × ${rowsEach} rows, ingestion flat out (${writers} writers × ${batch})`);
  log(`server: ${server.description}`);
  const bench = await createBenchDatabase(server.url, `bench_brake_${randomBytes(3).toString('hex')}`);
  const temporal = await startBenchTemporal();
  const allSets = [
    {
      prefix: 'braked-',
      label: 'with the brake',
      env: {} as Record<string, string>,
    },
    {
      prefix: 'unbraked-',
      label: 'without it',
      env: {
        WORKER_MOVE_SLOTS: '64',
        MOVES_PER_SECOND: '0',
        WORKER_MOVES_PER_SECOND: '0',
        MOVE_NICE_RATIO: '0',
        MOVE_MAX_THREADS_RUNNING: '0',
      },
    },
  ];
  // BENCH_BRAKE_SETS=braked runs the drain with the brake alone (a slower pace, without the comparison).
  const only = (process.env.BENCH_BRAKE_SETS ?? 'braked,unbraked').split(',').map((x) => x.trim());
  const sets = allSets.filter((set) => only.includes(set.prefix.replace(/-$/, '')));
  if (sets.length === 0) throw new Error('BENCH_BRAKE_SETS: give braked, unbraked or both');
  try {
    const seedStarted = performance.now();
    await loadIntoHotTables(
      bench.db,
      async (staging) => {
        for (const set of sets) await seedDueRows(bench.db, staging, set.prefix, messages, rowsEach);
      },
      log,
    );
    log(`seeded ${fmtInt(sets.length * messages * rowsEach)} rows in ${((performance.now() - seedStarted) / 1000).toFixed(0)} s`);

    const pids = { mysql: server.pid, temporal: temporal.server.pid ?? null, worker: null };
    /**
     * Ingestion alone for BENCH_BRAKE_ALONE_SECONDS, once what came before (InnoDB's purge of dropped rows,
     * Temporal's own clean-up) has settled.
     */
    const ingestAlone = async (when: string): Promise<{ figures: Throughput; cores: CoresBusy }> => {
      await sleep(settleSeconds * 1000);
      const meter = cpuMeter(pids);
      const run = ingestFlatOut(bench, writers, batch);
      await sleep(aloneSeconds * 1000);
      const figures = await run.stop();
      const busy = meter.stop();
      log(`ingestion alone ${when}: ${fmtInt(figures.eventsPerSecond)} events/s`);
      return { figures, cores: busy };
    };
    const figures: DrainFigures[] = [];
    for (const set of sets) {
      const { figures: aloneFigures, cores: coresAlone } = await ingestAlone('before the drain');
      await startDueActors(
        temporal,
        Array.from({ length: messages }, (_, i) => dueRef(set.prefix, i)),
        SIGNALS_AT_ONCE,
      );

      const worker = spawnBenchWorker({
        temporalAddress: temporal.address,
        mysqlUrl: bench.url,
        ttl: '3 months',
        cleanupInterval: '1 hour',
        chunkRows: 5000,
        extra: set.env,
      });
      const besideMeter = cpuMeter({ ...pids, worker: worker.child.pid ?? null });
      const beside = ingestFlatOut(bench, writers, batch);
      const started = performance.now();
      const deadline = Date.now() + timeoutMs;
      let besideFigures: Throughput;
      let coresBeside: CoresBusy;
      let expiredAtEnd = messages;
      try {
        for (let lastLog = Date.now(); ;) {
          const done = await countOf(
            bench.db,
            `SELECT COUNT(*) AS n FROM message_availability WHERE message_id LIKE '${set.prefix}%' AND state = 'expired'`,
          );
          if (done >= messages) break;
          if (Date.now() > deadline) {
            // Reported as far as it went: ingestion's figures beside a drain cut short are still figures.
            log(`${set.label}: only ${done} of ${messages} expired in ${timeoutMs / 60_000} min; stopping here`);
            expiredAtEnd = done;
            break;
          }
          if (Date.now() - lastLog > 30_000) {
            log(`  ${set.label}: ${fmtInt(done)} / ${fmtInt(messages)} expired`);
            lastLog = Date.now();
          }
          await sleep(500);
        }
      } finally {
        besideFigures = await beside.stop();
        coresBeside = besideMeter.stop();
        await worker.stop();
      }
      const drainSeconds = (performance.now() - started) / 1000;
      const { figures: aloneAfter } = await ingestAlone('after the drain');
      const generations = await countOf(bench.db, `SELECT COUNT(*) AS n FROM archive_manifests WHERE message_id LIKE '${set.prefix}%'`);
      const archived = await countOf(
        bench.db,
        `SELECT SUM(row_count) AS n FROM archive_manifests WHERE message_id LIKE '${set.prefix}%' AND status = 'archived'`,
      );
      const hotLeft = await hotRowsLike(bench.db, `${set.prefix}%`);
      const finished = expiredAtEnd === messages;
      const exactlyOnce = !finished || (generations === messages && archived === messages * rowsEach && hotLeft === 0);
      const ratio = besideFigures.eventsPerSecond / ((aloneFigures.eventsPerSecond + aloneAfter.eventsPerSecond) / 2);
      log(
        `${set.label}: drained in ${drainSeconds.toFixed(0)} s; ingestion ${fmtInt(besideFigures.eventsPerSecond)} events/s beside it (${(ratio * 100).toFixed(0)} % of alone)`,
      );
      figures.push({
        label: set.label,
        env: set.env,
        alone: aloneFigures,
        aloneAfter,
        beside: besideFigures,
        ratio,
        drainSeconds,
        exactlyOnce,
        coresAlone,
        coresBeside,
        expired: expiredAtEnd,
      });
    }

    const braked = figures.find((f) => f.label === 'with the brake') ?? figures[0];
    const result = {
      server: server.description,
      messages,
      rowsEach,
      writers,
      batch,
      brake: {
        moveSlots: brake.worker.moveSlots,
        movesPerSecond: brake.worker.movesPerSecond,
        workerMovesPerSecond: brake.worker.workerMovesPerSecond,
        ...brake.moveThrottle,
      },
      drains: figures,
      uptimeBefore,
      uptimeAfter: uptimeLine(),
    };
    const markdown = [
      `Server: ${server.description}. ${fmtInt(messages)} due messages × ${rowsEach} rows per drain; ingestion flat out, ${writers} writers × ${batch} events, in the benchmark's process; one worker; ${temporal.description}. The brake: ${brake.worker.moveSlots} move slots, ${brake.worker.movesPerSecond ?? 'no limit of'} moves per second on the queue and ${brake.worker.workerMovesPerSecond ?? 'no limit of'} per worker, nice ratio ${brake.moveThrottle.niceRatio}, Threads_running limit ${brake.moveThrottle.maxThreadsRunning}.`,
      '',
      table(
        [
          'drain',
          'ingestion alone before / after (events/s)',
          'beside the drain (events/s)',
          'beside / alone',
          'drain took',
          'cores busy alone → beside (MariaDB / Temporal / worker / ingestion)',
          'archived exactly once',
        ],
        figures.map((f) => [
          f.label,
          `${fmtInt(f.alone.eventsPerSecond)} / ${fmtInt(f.aloneAfter.eventsPerSecond)}`,
          fmtInt(f.beside.eventsPerSecond),
          `${(f.ratio * 100).toFixed(0)} %`,
          f.expired === messages
            ? `${f.drainSeconds.toFixed(0)} s`
            : `cut at ${f.drainSeconds.toFixed(0)} s (${fmtInt(f.expired)} expired)`,
          `${cores(f.coresAlone)} → ${cores(f.coresBeside)}`,
          f.expired === messages ? verdict(f.exactlyOnce) : 'not checked (cut short)',
        ]),
      ),
      '',
      table(['check', 'result'], [['with the brake, ingestion keeps at least 80 % of its throughput', verdict(braked.ratio >= 0.8)]]),
    ].join('\n');
    log(`results: ${saveResults('brake', { ...result, markdown })}`);
    if (!figures.every((f) => f.exactlyOnce)) throw new Error('a drain did not archive every message exactly once');
    return { ...result, markdown };
  } finally {
    await temporal.close();
    if (!process.env.BENCH_KEEP) await bench.drop();
  }
}

if (require.main === module) exitWhenSettled(runOnBenchServer(brakeBench), 'bench:brake');
