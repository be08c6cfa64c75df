/**
 * What a benchmark runs the service on: a private Temporal dev server (its own port and SQLite file,
 * so nothing else on the machine shares its task queue), and worker child processes started exactly
 * as in production, whose memory is read from /proc while they work.
 *
 * The worker is the one the image runs (docs/DEPLOY.md): the JavaScript `npm run build` makes, with the
 * prebuilt workflow bundle, built once per benchmark run into .data/bench-build. BENCH_WORKER=source
 * runs src/worker.ts through tsx instead, as `npm start` does: that worker also bundles the workflow
 * code when it starts, and carries the bundler and the TypeScript loader in its memory from then on.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { ensureTemporalBinary } from '../../scripts/ensureTemporal';
import { LifecycleClient } from '../../src/client/lifecycleClient';
import { lifecycleWorkflowId } from '../../src/shared/workflowId';
import type { LifecycleStatus, MessageRef } from '../../src/shared/types';
import { startDevServerOnFreePort, type DevServerHandle } from '../../src/temporal/devServer';
import { ensureSearchAttributes } from '../../src/temporal/searchAttributes';
import { MemorySampler } from './proc';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const NAMESPACE = 'default';

export interface BenchTemporal {
  address: string;
  connection: Connection;
  client: Client;
  lifecycle: LifecycleClient;
  server: DevServerHandle;
  /** The server's settings as a report names them, e.g. "Temporal dev server (SQLite in WAL mode)". */
  description: string;
  close(): Promise<void>;
}

/**
 * The dev server as `npm start` runs it (SQLite in WAL mode, src/temporal/devServer.ts).
 * BENCH_TEMPORAL_SQLITE_DEFAULTS=1 runs its SQLite in SQLite's own defaults instead (a rollback journal,
 * an fsync per commit), to compare with runs made so; BENCH_TEMPORAL_EAGER=1 switches on eager activity
 * execution (`system.enableActivityEagerExecution`).
 */
export async function startBenchTemporal(dynamicConfig: Record<string, string | number | boolean> = {}): Promise<BenchTemporal> {
  const sqliteDefaults = process.env.BENCH_TEMPORAL_SQLITE_DEFAULTS === '1';
  const eager = process.env.BENCH_TEMPORAL_EAGER === '1';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'idbench-temporal-'));
  const server = await startDevServerOnFreePort({
    binary: await ensureTemporalBinary(),
    uiPort: null,
    dbFile: path.join(dir, 'temporal.db'),
    logLevel: 'error',
    dynamicConfig: {
      ...(eager ? { 'system.enableActivityEagerExecution': true } : {}),
      ...dynamicConfig,
    },
    ...(sqliteDefaults ? { sqlitePragmas: {} } : {}),
  });
  const connection = await Connection.connect({ address: server.address });
  await ensureSearchAttributes(connection, NAMESPACE);
  const client = new Client({ connection, namespace: NAMESPACE });
  return {
    address: server.address,
    connection,
    client,
    lifecycle: new LifecycleClient(client),
    server,
    description: `Temporal dev server (SQLite ${sqliteDefaults ? 'defaults' : 'in WAL mode'}${eager ? ', eager activities' : ''})`,
    async close() {
      await connection.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface BenchWorker {
  child: ChildProcess;
  memory: MemorySampler;
  /** SIGTERM (graceful shutdown), SIGKILL after 15 s; returns the memory figures of the process's whole life. */
  stop(): Promise<{ peakRss: number; hwm: number }>;
}

export interface WorkerEnv {
  temporalAddress: string;
  mysqlUrl: string;
  ttl: string;
  cleanupInterval?: string;
  chunkRows?: number;
  extra?: Record<string, string>;
}

const BUILD_DIR = path.join(REPO_ROOT, '.data', 'bench-build');
let built = false;

/** How a worker is started: node's arguments and the environment it needs beyond the settings. */
function workerCommand(): { args: string[]; env: Record<string, string> } {
  if (process.env.BENCH_WORKER === 'source') return { args: ['--import', 'tsx', path.join(REPO_ROOT, 'src/worker.ts')], env: {} };
  if (!built) {
    const build = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'scripts/build.ts'), '--out-dir', BUILD_DIR], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (build.status !== 0) throw new Error(`npm run build into ${BUILD_DIR} failed (${build.signal ?? `exit code ${build.status}`})`);
    built = true;
  }
  return {
    args: [path.join(BUILD_DIR, 'src/worker.js')],
    env: { WORKFLOW_BUNDLE_PATH: path.join(BUILD_DIR, 'workflow-bundle.js') },
  };
}

/** The production worker in a child process, as the image starts it (or as `npm start` does: BENCH_WORKER=source). */
export function spawnBenchWorker(env: WorkerEnv): BenchWorker {
  const command = workerCommand();
  const child = spawn(process.execPath, command.args, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      // The worker's own node options (e.g. a heap bound), not the benchmark's.
      NODE_OPTIONS: process.env.BENCH_WORKER_NODE_OPTIONS ?? '',
      ...command.env,
      TEMPORAL_ADDRESS: env.temporalAddress,
      TEMPORAL_NAMESPACE: NAMESPACE,
      MYSQL_URL: env.mysqlUrl,
      INTERACTION_DATA_TTL: env.ttl,
      CLEANUP_INTERVAL: env.cleanupInterval ?? '1 day',
      ARCHIVE_CHUNK_ROWS: String(env.chunkRows ?? 5000),
      RESEND_API_KEY: '',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
      ...env.extra,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (!child.pid) throw new Error('could not start the worker');
  const memory = new MemorySampler(child.pid).start();
  return {
    child,
    memory,
    async stop() {
      const figures = memory.stop();
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        });
      }
      return figures;
    },
  };
}

/**
 * Waits until the actor has no workflow task and no activity under way. The state a benchmark waits
 * for is reported before the actor's last bookkeeping activity finishes; a worker stopped in between
 * would leave that activity to time out (a minute) and charge it to the next phase.
 */
export async function waitForIdleActor(client: Client, ref: MessageRef, timeoutMs = 120_000): Promise<void> {
  const handle = client.workflow.getHandle(lifecycleWorkflowId(ref));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = await handle.describe();
    if ((d.raw.pendingActivities?.length ?? 0) === 0 && !d.raw.pendingWorkflowTask) return;
    if (Date.now() > deadline) throw new Error(`${lifecycleWorkflowId(ref)} still busy after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** gRPC's NOT_FOUND status code. */
const GRPC_NOT_FOUND = 5;

/**
 * Points the actor's next workflow task at the shared task queue. Each phase runs a new worker; the
 * actor's tasks would otherwise go first to the stopped worker's sticky queue and wait out its
 * schedule-to-start timeout, which a worker that keeps running never costs.
 */
export async function resetStickiness(client: Client, ref: MessageRef): Promise<void> {
  try {
    await client.workflowService.resetStickyTaskQueue({
      namespace: client.options.namespace,
      execution: { workflowId: lifecycleWorkflowId(ref) },
    });
  } catch (err) {
    // An actor a failed phase never started has nothing to reset, and must not hide that phase's error.
    if ((err as { code?: number }).code !== GRPC_NOT_FOUND) throw err;
  }
}

/** Polls the actor's status query until `accept` is true; returns the status and when it was seen. */
export async function waitForStatus(
  lifecycle: LifecycleClient,
  ref: MessageRef,
  accept: (s: LifecycleStatus) => boolean,
  timeoutMs: number,
  everyMs = 100,
): Promise<{ status: LifecycleStatus; at: number }> {
  const deadline = Date.now() + timeoutMs;
  let last: LifecycleStatus | null = null;
  while (Date.now() < deadline) {
    last = await lifecycle.status(ref.kind, ref.id).catch(() => null);
    if (last && accept(last)) return { status: last, at: performance.now() };
    await sleep(everyMs);
  }
  throw new Error(`${ref.kind}:${ref.id} did not reach the expected state in ${timeoutMs} ms; last status ${JSON.stringify(last)}`);
}

export interface ActivityTiming {
  activity: string;
  attempts: number;
  /** From the activity being scheduled to its completion, as the Temporal server recorded them. */
  seconds: number;
}

/** Durations of the actor's activities of one type, read from its history (server clock). */
export async function activityTimings(client: Client, ref: MessageRef, activity: string): Promise<ActivityTiming[]> {
  const history = await client.workflow.getHandle(lifecycleWorkflowId(ref)).fetchHistory();
  const scheduled = new Map<string, { at: number }>();
  const out: ActivityTiming[] = [];
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  for (const e of history.events ?? []) {
    const id = String(e.eventId);
    const s = e.activityTaskScheduledEventAttributes;
    if (s && s.activityType?.name === activity) scheduled.set(id, { at: ms(e.eventTime) });
    const c = e.activityTaskCompletedEventAttributes;
    if (c && scheduled.has(String(c.scheduledEventId))) {
      const started = history.events?.find((x) => String(x.eventId) === String(c.startedEventId));
      out.push({
        activity,
        attempts: started?.activityTaskStartedEventAttributes?.attempt ?? 1,
        seconds: (ms(e.eventTime) - scheduled.get(String(c.scheduledEventId))!.at) / 1000,
      });
    }
  }
  return out;
}

/** The actor's events from the last signal named `signal` on, with seconds since it: where end-to-end time goes. */
export async function timelineSince(client: Client, ref: MessageRef, signal: string): Promise<string> {
  const history = await client.workflow.getHandle(lifecycleWorkflowId(ref)).fetchHistory();
  const events = history.events ?? [];
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  let start = -1;
  events.forEach((e, i) => {
    if (e.workflowExecutionSignaledEventAttributes?.signalName === signal) start = i;
  });
  if (start < 0) return `(no ${signal} signal in the current run)`;
  const t0 = ms(events[start].eventTime);
  return events
    .slice(start)
    .map((e) => {
      const kind = Object.keys(e).find((k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k]) ?? '?';
      const activity = e.activityTaskScheduledEventAttributes?.activityType?.name ?? '';
      return `+${((ms(e.eventTime) - t0) / 1000).toFixed(1)}s ${kind.replace('EventAttributes', '')} ${activity}`.trim();
    })
    .join('\n');
}
