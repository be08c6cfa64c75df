/**
 * The worker: runs lifecycle actors and their activities on the `interaction-data` task queue.
 * Stateless; run as many replicas as needed against the same Temporal namespace and MySQL.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { bundleWorkflowsInThread } from './temporal/workflowBundle';
import { createActivities } from '../activities';
import { SummaryMailer } from './bulk/summaryEmail';
import { loadConfig, type Config } from './config';
import { openDatabase, type Db } from './db/knex';
import { RestoreNotifier } from './email/restoreNotifier';
import { createLogger } from './logger';
import { TASK_QUEUE } from './shared/workflowId';
import { installRuntimeLogging } from './temporal/runtimeLogging';

export interface RunningWorker {
  worker: Worker;
  db: Db;
  /** Resolves when the worker has shut down. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export async function startWorker(config: Config = loadConfig(), overrides: Partial<WorkerOptions> = {}): Promise<RunningWorker> {
  const log = createLogger('worker', config.logLevel);
  installRuntimeLogging(log, config.logLevel);
  const db = await openDatabase(config.mysqlUrl);
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  const mailOptions = { apiKey: config.resendApiKey, baseUrl: config.resendBaseUrl, from: config.emailFrom };
  const notifier = new RestoreNotifier(db, mailOptions, log);
  // Bulk restores signal and query the actors from activities: they need a client of their own.
  const clientConnection = await Connection.connect({ address: config.temporalAddress });
  const temporal = new Client({ connection: clientConnection, namespace: config.temporalNamespace });
  const summaryMailer = new SummaryMailer(db, mailOptions, log);
  const worker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: TASK_QUEUE,
    workflowBundle: await bundleWorkflowsInThread(require.resolve('../workflows')),
    activities: createActivities({ db, config, notifier, temporal, summaryMailer }),
    ...overrides,
  });
  log.info(
    {
      temporal: config.temporalAddress,
      namespace: config.temporalNamespace,
      taskQueue: TASK_QUEUE,
      ttl: config.interactionDataTtl.text,
      cleanupInterval: config.cleanupInterval.text,
      email: config.resendApiKey ? 'resend' : 'outbox',
    },
    'worker started',
  );
  const done = worker.run().finally(async () => {
    await clientConnection.close();
    await connection.close();
    await db.destroy();
  });
  return {
    worker,
    db,
    done,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
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
