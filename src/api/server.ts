/**
 * Runs the HTTP API:  tsx src/api/server.ts  (npm run api). Stateless, so any number of replicas can
 * run behind a load balancer.
 */
import { configuredStores } from '../archive/configuredStores';
import type { Knex } from 'knex';
import { BulkRestoreClient } from '../client/bulkRestoreClient';
import { ErasureClient } from '../client/erasureClient';
import { LifecycleClient } from '../client/lifecycleClient';
import { loadConfig, type Config } from '../config';
import { openDatabase } from '../db/knex';
import { createLogger, type Logger } from '../logger';
import { connectTemporal, type TemporalHandles } from '../temporal/connection';
import { authenticatorFor } from '../auth/authenticator';
import { ensureBootstrapToken } from '../auth/bootstrap';
import { allowedEmailDomains } from '../auth/policy';
import { callbackPolicy } from '../config';
import { buildApi, type ApiServer } from './app';
import { apiLimitsFromEnv } from './limits';

export interface StartApiOptions {
  logger?: Logger;
  /** Reuse an existing connection (it is then left open by close()). */
  temporal?: TemporalHandles;
  /** How long to wait for Temporal to come up before failing; the API usually starts alongside it. */
  connectWaitMs?: number;
  db?: Knex;
  temporalTimeoutMs?: number;
  /** Where OIDC_*, API_ADMIN_TOKEN, EMAIL_ALLOWED_DOMAINS and the limits are read; process.env by default. */
  env?: NodeJS.ProcessEnv;
}

export interface RunningApi {
  app: ApiServer;
  /** Base URL the API answers on, e.g. http://127.0.0.1:3000. */
  url: string;
  close(): Promise<void>;
}

export async function startApi(
  config: Pick<Config, 'host' | 'port' | 'temporalAddress' | 'temporalNamespace' | 'mysqlUrl'> &
    Partial<Pick<Config, 'usersExportTimeLimit' | 'archiveStore' | 's3' | 'archiveCodecThreads' | 'archiveChunkRows'>>,
  options: StartApiOptions = {},
): Promise<RunningApi> {
  const logger = options.logger ?? createLogger('api');
  const env = options.env ?? process.env;
  // Bad security settings stop the start before anything is opened.
  const allowedDomains = allowedEmailDomains(env);
  const callbacks = callbackPolicy(env);
  const limits = apiLimitsFromEnv(env);
  const ownsConnection = options.temporal === undefined;
  const temporal = options.temporal ?? (await connectTemporal(config, { waitMs: options.connectWaitMs ?? 30_000, log: logger }));
  // The data plane reads and writes MySQL; an API started on its own opens (and migrates) the database.
  const ownsDb = options.db === undefined;
  let db: Knex;
  try {
    db = options.db ?? (await openDatabase(config.mysqlUrl));
  } catch (err) {
    if (ownsConnection) await temporal.connection.close().catch(() => undefined);
    throw err;
  }
  let auth;
  try {
    auth = authenticatorFor(db, env);
    await ensureBootstrapToken(db, { env });
  } catch (err) {
    if (ownsConnection) await temporal.connection.close().catch(() => undefined);
    if (ownsDb) await db.destroy().catch(() => undefined);
    throw err;
  }
  // A user's archived rows are read where they are kept (GET /v1/users/{id}/interactions), checked on
  // the codec's threads as the worker checks what it archives.
  const archive = configuredStores({
    archiveStore: config.archiveStore ?? 'mysql',
    s3: config.s3 ?? null,
    archiveCodecThreads: config.archiveCodecThreads ?? 1,
    archiveChunkRows: config.archiveChunkRows,
  });
  const app = buildApi({
    archiveStores: archive.stores,
    auth,
    allowedEmailDomains: allowedDomains,
    callbacks,
    limits,
    lifecycle: new LifecycleClient(temporal.client),
    bulk: new BulkRestoreClient(temporal.client),
    erasures: new ErasureClient(temporal.client, db),
    connection: temporal.connection,
    db,
    logger,
    temporalTimeoutMs: options.temporalTimeoutMs,
    usersExportTimeLimitMs: config.usersExportTimeLimit?.milliseconds,
  });
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    await archive.close().catch(() => undefined);
    if (ownsConnection) await temporal.connection.close().catch(() => undefined);
    if (ownsDb) await db.destroy().catch(() => undefined);
    throw err;
  }
  const address = app.server.address();
  const port = address !== null && typeof address === 'object' ? address.port : config.port;
  // 0.0.0.0 and :: are where it listens, not an address anyone can browse to.
  const host =
    config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      await app.close();
      await archive.close();
      if (ownsConnection) await temporal.connection.close();
      if (ownsDb) await db.destroy();
    })();
    return closing;
  };
  return { app, url, close };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('api', config.logLevel);
  const api = await startApi(config, { logger });
  logger.info(
    { url: api.url, openapi: `${api.url}/openapi.json`, temporal: config.temporalAddress },
    `interaction-data API listening on ${api.url}`,
  );

  const shutdown = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    // A second signal while draining means "now".
    process.once(signal, () => process.exit(1));
    api.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`interaction-data API: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
