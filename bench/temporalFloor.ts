/**
 * What the Temporal dev server spends on the least an actor can be, on this machine: BENCH_FLOOR_ACTORS
 * workflows (default 1,000), each started by a signal before the worker polls (as bench:backlog starts
 * its actors), then `steps` activities one after another with a search attribute shown after each, then
 * asleep without a timer. Run for each step count in BENCH_FLOOR_STEPS (default "1,2,4"); an expiry of
 * bench:backlog is 4 (details, stop, reference count, expiry). No MySQL, no ingestion beside: the
 * figures are the server's own floor under a rollout's rate, which no change to the actor's code can
 * go below.
 *
 *   npm run bench:temporal-floor
 *   BENCH_TEMPORAL_SQLITE_DEFAULTS=1 npm run bench:temporal-floor      SQLite's own journal, an fsync per commit
 *
 * Reported per step count: actors per minute, and CPU ms per actor of the Temporal dev server and of
 * this process (the worker, in process, and the client).
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { forEachLimited } from './lib/dataset';
import { cpuSeconds, fmtInt } from './lib/proc';
import { envInt, envIntList, exitWhenSettled, log, saveResults, table } from './lib/report';
import { NAMESPACE, startBenchTemporal } from './lib/stack';
import { floorStop } from './floor/workflows';

const TASK_QUEUE = 'temporal-floor';
const SIGNALS_AT_ONCE = 32;

interface FloorRun {
  steps: number;
  actors: number;
  seconds: number;
  actorsPerMinute: number;
  cpuMsPerActor: { temporal: number; workerAndClient: number };
}

function stepCounts(): number[] {
  const counts = envIntList('BENCH_FLOOR_STEPS', [1, 2, 4]);
  // An actor of no steps never shows `expired`, so the run would never end.
  if (counts.includes(0)) throw new Error(`BENCH_FLOOR_STEPS must list whole numbers ≥ 1, got "${process.env.BENCH_FLOOR_STEPS}"`);
  return counts;
}

const oneDecimal = (x: number) => Math.round(x * 10) / 10;

/** One step count on a fresh dev server: its figures, and the server's settings as reported. */
async function runFloor(steps: number, actors: number): Promise<{ run: FloorRun; server: string }> {
  const temporal = await startBenchTemporal();
  try {
    const ids = Array.from({ length: actors }, (_, i) => `floor-${steps}-${i}`);
    await forEachLimited(ids, SIGNALS_AT_ONCE, async (workflowId) => {
      await temporal.client.workflow.signalWithStart('floorActor', {
        workflowId,
        taskQueue: TASK_QUEUE,
        args: [steps],
        signal: floorStop,
        signalArgs: [],
      });
    });
    const connection = await NativeConnection.connect({ address: temporal.address });
    const worker = await Worker.create({
      connection,
      namespace: NAMESPACE,
      taskQueue: TASK_QUEUE,
      workflowsPath: path.join(__dirname, 'floor', 'workflows.ts'),
      activities: { step: (n: number) => Promise.resolve(n) },
      maxCachedWorkflows: Math.max(actors, 500),
    });
    const running = worker.run();
    // The bundle is built when the worker is created: the clock starts once it polls.
    const cpu0 = { temporal: cpuSeconds(temporal.server.pid), self: process.cpuUsage() };
    const t0 = performance.now();
    let done = 0;
    while (done < actors) {
      await sleep(1000);
      done = (await temporal.client.workflow.count(`WorkflowType = 'floorActor' AND InteractionDataState = 'expired'`)).count;
    }
    const seconds = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(cpu0.self);
    const run: FloorRun = {
      steps,
      actors,
      seconds: oneDecimal(seconds),
      actorsPerMinute: Math.round((actors / seconds) * 60),
      cpuMsPerActor: {
        temporal: oneDecimal(((cpuSeconds(temporal.server.pid) - cpu0.temporal) * 1000) / actors),
        workerAndClient: oneDecimal((self.user + self.system) / 1000 / actors),
      },
    };
    worker.shutdown();
    await running;
    await connection.close();
    return { run, server: temporal.description };
  } finally {
    await temporal.close();
  }
}

async function main(): Promise<void> {
  const actors = envInt('BENCH_FLOOR_ACTORS', 1000);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const runs: FloorRun[] = [];
  let server = '';
  log(`temporal floor: ${fmtInt(actors)} actors per step count`);
  for (const steps of stepCounts()) {
    const { run, server: settings } = await runFloor(steps, actors);
    server = settings;
    log(
      `  ${steps} step(s): ${fmtInt(run.actorsPerMinute)}/min, Temporal ${run.cpuMsPerActor.temporal} ms and worker + client ${run.cpuMsPerActor.workerAndClient} ms CPU per actor`,
    );
    runs.push(run);
  }
  const file = saveResults('temporal-floor', { server, actors, runs });
  log(`results: ${file} (${server})`);
  console.log(
    table(
      ['activities per actor', 'actors/minute', 'Temporal CPU ms per actor', 'worker + client CPU ms per actor'],
      runs.map((r) => [r.steps, fmtInt(r.actorsPerMinute), r.cpuMsPerActor.temporal, r.cpuMsPerActor.workerAndClient]),
    ),
  );
}

exitWhenSettled(main(), 'bench:temporal-floor');
