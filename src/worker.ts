/**
 * The worker: runs lifecycle actors, bulk restores and their activities on the `interaction-data` task
 * queue, their archives and restores on MOVES_TASK_QUEUE with WORKER_MOVE_SLOTS slots (the bound on
 * moves at once), and the bulk restores' per-message requests to the actors on a queue of their own
 * (BULK_WATCH_TASK_QUEUE).
 * Stateless; run as many replicas as needed against the same Temporal namespace and MySQL.
 */
import http from 'node:http';
import { countStatesFrom, METRICS_CONTENT_TYPE, metricsText } from './metrics/metrics';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { workflowBundleFor } from './temporal/workflowBundle';
import { createActivities } from '../activities';
import type { ArchiveInput, ExpireInput } from '../activities/types';
import type { MessageRef } from './shared/types';
import { configuredStores } from './archive/configuredStores';
import { checkBucket } from './archive/s3Client';
import { SummaryMailer } from './bulk/summaryEmail';
import { loadConfig, type Config } from './config';
import { openDatabase, type Db } from './db/knex';
import { describeMysqlTls, mysqlTlsFromEnv } from './db/mysqlTls';
import { connectTemporal, temporalConnectionOptions } from './temporal/connection';
import { describeTransport } from './temporal/envSettings';
import { RestoreNotifier } from './email/restoreNotifier';
import { createLogger } from './logger';
import { BULK_WATCH_TASK_QUEUE, MOVES_TASK_QUEUE, TASK_QUEUE } from './shared/workflowId';
import { installRuntimeLogging } from './temporal/runtimeLogging';
import { LateWakeupDispatcher } from './client/lateWakeupDispatcher';
import { LifecycleClient } from './client/lifecycleClient';
import { shortestMilliseconds } from './shared/duration';

/** GET /metrics in Prometheus' text format, as the API serves it; anything else is 404. */
async function serveMetrics(db: Db, host: string, port: number): Promise<http.Server> {
  countStatesFrom(db);
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metricsText().then(
      (text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}

export interface RunningWorker {
  worker: Worker;
  /** Polls BULK_WATCH_TASK_QUEUE for requestBulkItemRestore (and restoreBulkItem, of older runs) only, with slots of its own. */
  watchWorker: Worker;
  /** Polls MOVES_TASK_QUEUE for archives, sweeps and restores, WORKER_MOVE_SLOTS at once. */
  movesWorker: Worker;
  db: Db;
  /** Resolves when the worker has shut down. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export async function startWorker(config: Config = loadConfig(), overrides: Partial<WorkerOptions> = {}): Promise<RunningWorker> {
  const log = createLogger('worker', config.logLevel);
  installRuntimeLogging(log, config.logLevel, config.temporalSdkMetricsAddress);
  const mysqlTls = mysqlTlsFromEnv();
  const db = await openDatabase(config.mysqlUrl, { tls: mysqlTls ?? null });
  // Bulk restores signal and query the actors from activities: they need a client of their own.
  const { connection: clientConnection, client: temporal } = await connectTemporal(config, { log });
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const mailOptions = { apiKey: config.resendApiKey, baseUrl: config.resendBaseUrl, from: config.emailFrom };
  const notifier = new RestoreNotifier(db, mailOptions, log);
  const summaryMailer = new SummaryMailer(db, mailOptions, log);
  const archive = configuredStores(config);
  if (archive.s3Client && config.s3) {
    const bucket = await checkBucket(archive.s3Client, config.s3.bucket);
    if (!bucket.ok) log.warn({ error: bucket.transient }, 'the archive bucket did not answer; archives will retry until it does');
  }
  const activities = createActivities({ db, config, notifier, temporal, summaryMailer, stores: archive.stores });
  const worker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: TASK_QUEUE,
    workflowBundle: await workflowBundleFor(config.workflowBundlePath, require.resolve('../workflows')),
    // restoreBulkItem stays registered here too, for bulk restores that scheduled it on this queue.
    activities,
    // Sized from configuration, not from the heap: the SDK's default cache grows with the machine's
    // memory, and with it the worker's (docs/SCALING.md).
    maxCachedWorkflows: config.worker.workflowCacheSize,
    maxConcurrentWorkflowTaskExecutions: Math.min(config.worker.workflowTaskSlots, Math.max(2, config.worker.workflowCacheSize)),
    maxConcurrentActivityTaskExecutions: config.worker.activitySlots,
    maxConcurrentLocalActivityExecutions: config.worker.localActivitySlots,
    ...overrides,
  });
  const watchWorker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: BULK_WATCH_TASK_QUEUE,
    // restoreBulkItem: the watch that bulk restores started before the actor's restoreDone still schedule.
    activities: { requestBulkItemRestore: activities.requestBulkItemRestore, restoreBulkItem: activities.restoreBulkItem },
    maxConcurrentActivityTaskExecutions: config.bulkWatchSlots,
  });
  const movesWorker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: MOVES_TASK_QUEUE,
    activities: {
      archiveInteractions: (input: ArchiveInput) => activities.archiveInteractions(input),
      expireMessage: (input: ExpireInput) => activities.expireMessage(input),
      restoreInteractions: (input: ArchiveInput) => activities.restoreInteractions(input),
      countReferences: (ref: MessageRef) => activities.countReferences(ref),
    },
    maxConcurrentActivityTaskExecutions: config.worker.moveSlots,
    ...(config.worker.movesPerSecond ? { maxTaskQueueActivitiesPerSecond: config.worker.movesPerSecond } : {}),
    ...(config.worker.workerMovesPerSecond ? { maxActivitiesPerSecond: config.worker.workerMovesPerSecond } : {}),
  });
  log.info(
    {
      temporal: config.temporalAddress,
      namespace: config.temporalNamespace,
      temporalTransport: describeTransport(config.temporalTransport),
      mysqlTransport: describeMysqlTls(mysqlTls),
      taskQueue: TASK_QUEUE,
      bulkWatchQueue: BULK_WATCH_TASK_QUEUE,
      movesQueue: MOVES_TASK_QUEUE,
      moveSlots: config.worker.moveSlots,
      movesPerSecond: config.worker.movesPerSecond,
      workerMovesPerSecond: config.worker.workerMovesPerSecond,
      ttl: config.interactionDataTtl.text,
      cleanupInterval: config.cleanupInterval.text,
      email: config.resendApiKey ? 'resend' : 'outbox',
      archiveStore: archive.stores.target.location,
    },
    'worker started',
  );
  const wakeups = new LateWakeupDispatcher(db, new LifecycleClient(temporal), log, {
    pollMs: config.lateWakeupPoll.milliseconds,
    intervalSeconds: Math.ceil(shortestMilliseconds(config.cleanupInterval) / 1000),
  });
  wakeups.start();
  const metricsServer = config.workerMetricsPort === null ? null : await serveMetrics(db, config.host, config.workerMetricsPort);
  const stopBoth = () => {
    void wakeups.stop();
    for (const w of [worker, watchWorker, movesWorker]) if (w.getState() === 'RUNNING') w.shutdown();
  };
  // One process, one fate: when either worker stops (shutdown or a fatal error), the other stops too.
  const runs = [worker, watchWorker, movesWorker].map((w) => w.run().finally(stopBoth));
  // Both have finished before the connections close; then the first failure, if any, is the outcome.
  const done = Promise.allSettled(runs).then(async (outcomes) => {
    await wakeups.stop();
    await new Promise((resolve) => (metricsServer ? metricsServer.close(resolve) : resolve(undefined)));
    await clientConnection.close();
    await connection.close();
    await archive.close();
    await db.destroy();
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
  });
  return {
    worker,
    watchWorker,
    movesWorker,
    db,
    done,
    async shutdown() {
      stopBoth();
      await done;
    },
  };
}

if (require.main === module) {
  startWorker().then(
    (w) => w.done.then(() => process.exit(0)),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
