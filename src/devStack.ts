/**
 * `npm start`: the whole service on one machine with local defaults — MySQL (the local server, or a
 * private one started from installed binaries), Temporal's dev server with its Web UI (persisted to
 * .data/, so actors and their timers survive a restart), the schema, the worker and the HTTP API.
 * `npm run demo` (or `npm start -- --demo`) also seeds demo messages with a TTL of seconds.
 * Ctrl-C stops everything this process started.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { ensureTemporalBinary } from '../scripts/ensureTemporal';
import { ensureVersityBinary } from '../scripts/ensureVersity';
import { startApi, type RunningApi } from './api/server';
import { ensureBootstrapToken } from './auth/bootstrap';
import { LifecycleClient } from './client/lifecycleClient';
import { loadConfig } from './config';
import { ensureLocalMysql } from './db/localMysql';
import { runDemo } from './demo';
import { createLogger, type Logger } from './logger';
import { embeddedGatewayEnv, startEmbeddedGateway, type EmbeddedGateway } from './s3/embeddedGateway';
import { ensureSearchAttributes } from './temporal/searchAttributes';
import { startDevServer, type DevServerHandle } from './temporal/devServer';
import { connectTemporal, temporalConnectionOptions, type TemporalConfig } from './temporal/connection';
import { startWorker, type RunningWorker } from './worker';

const root = path.resolve(__dirname, '..');
/** Where npm start keeps its state (the dev server's database, the admin token); DATA_DIR moves it. */
const dataRoot = process.env.DATA_DIR ? path.resolve(process.env.DATA_DIR) : path.join(root, '.data');
const demo = process.argv.includes('--demo');

/**
 * The embedded S3 gateway's account. It listens on loopback only and holds nothing but this machine's
 * own archive, so fixed values do: they are for local use only, never for a gateway others can reach.
 */
const LOCAL_S3_ACCESS_KEY = 'interaction-data';
const LOCAL_S3_SECRET_KEY = 'interaction-data-local-secret';
const LOCAL_S3_BUCKET = 'interaction-data';

async function temporalAnswers(config: TemporalConfig): Promise<boolean> {
  try {
    const c = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: 1_500 });
    await c.workflowService.getSystemInfo({});
    await c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Unless an archive store is configured (ARCHIVE_STORE, or an S3 endpoint or bucket of the user's),
 * runs the embedded S3 gateway over <data>/s3 and points this process's settings at it.
 */
async function startLocalArchiveStore(log: Logger): Promise<EmbeddedGateway | null> {
  const env = process.env;
  if (env.ARCHIVE_STORE || env.S3_ENDPOINT || env.S3_BUCKET) return null;
  const port = Number(env.S3_PORT || 7070);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`S3_PORT must be a TCP port, got "${env.S3_PORT}"`);
  let gw: EmbeddedGateway;
  try {
    gw = await startEmbeddedGateway({
      binary: await ensureVersityBinary({ log }),
      dataDir: path.join(dataRoot, 's3'),
      port,
      accessKey: LOCAL_S3_ACCESS_KEY,
      secretKey: LOCAL_S3_SECRET_KEY,
      bucket: LOCAL_S3_BUCKET,
      log,
    });
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\n(S3_PORT moves the local S3 gateway to another port; ARCHIVE_STORE=mysql archives to MySQL without it)`,
      { cause: err },
    );
  }
  // A profile of the user's would win over the gateway's keys in the AWS SDK's credential chain, and a
  // session token would be sent along with them.
  delete env.AWS_PROFILE;
  delete env.AWS_SESSION_TOKEN;
  Object.assign(env, embeddedGatewayEnv(gw));
  return gw;
}

/** The archive store's line of the "running" block, from the settings loadConfig has just accepted. */
function archiveLine(gw: EmbeddedGateway | null): string {
  if (gw) return `  S3 archive     ${gw.endpoint} bucket ${gw.bucket}, data in ${path.relative(process.cwd(), gw.dataDir) || gw.dataDir}`;
  const { ARCHIVE_STORE, S3_ENDPOINT, S3_BUCKET, S3_REGION, AWS_REGION } = process.env;
  // As loadConfig decides: S3 when asked for, or when a bucket is named and nothing is asked for.
  if (ARCHIVE_STORE === 'mysql' || (!ARCHIVE_STORE && !S3_BUCKET)) return '  Archive        MySQL (ARCHIVE_STORE=mysql)';
  return `  S3 archive     ${S3_ENDPOINT || `AWS S3 (${S3_REGION || AWS_REGION || 'us-east-1'})`} bucket ${S3_BUCKET}`;
}

async function main(): Promise<void> {
  if (demo) {
    // Seconds instead of months, unless the caller chose otherwise.
    process.env.INTERACTION_DATA_TTL ||= '20 seconds';
    process.env.CLEANUP_INTERVAL ||= '10 seconds';
  }
  // LOG_LEVEL, as loadConfig reads it: the configuration is loaded only once the archive store is settled.
  const log = createLogger('interaction-data');
  const cleanups: (() => Promise<void>)[] = [];
  const abort = new AbortController();
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    abort.abort();
    log.info('stopping everything this command started…');
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => log.warn({ err }, 'while stopping'));
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    const gateway = await startLocalArchiveStore(log);
    if (gateway) cleanups.push(() => gateway.stop());
    const config = loadConfig();

    const mysql = await ensureLocalMysql(config.mysqlUrl, log);
    if (mysql) cleanups.push(() => mysql.stop());

    let server: DevServerHandle | null = null;
    const [host, portText] = config.temporalAddress.split(':');
    if (await temporalAnswers(config)) {
      log.info({ address: config.temporalAddress }, 'using the Temporal server already running there');
    } else if (!['localhost', '127.0.0.1'].includes(host)) {
      throw new Error(
        `no Temporal server answers at ${config.temporalAddress} (TEMPORAL_ADDRESS), and it is not local, so none is started`,
      );
    } else if (config.temporalTransport.tls || config.temporalTransport.apiKey !== undefined) {
      // The dev server speaks plaintext only: starting one would not give what these settings ask for.
      throw new Error(
        `no Temporal server answers at ${config.temporalAddress} (TEMPORAL_ADDRESS) with TLS or an API key (TEMPORAL_TLS*, TEMPORAL_API_KEY), ` +
          'and the dev server npm start would run has neither, so none is started',
      );
    } else {
      const dataDir = path.join(dataRoot, 'temporal');
      mkdirSync(dataDir, { recursive: true });
      const port = Number(portText || 7233);
      server = await startDevServer({
        binary: await ensureTemporalBinary(),
        port,
        uiPort: port + 1000,
        dbFile: path.join(dataDir, 'dev-server.sqlite'),
        namespace: config.temporalNamespace,
        log,
      });
      const s = server;
      cleanups.push(() => s.stop());
    }

    const temporal = await connectTemporal(config, { waitMs: 30_000, log });
    cleanups.push(() => temporal.connection.close());
    await ensureSearchAttributes(temporal.connection, config.temporalNamespace, { log });

    const worker: RunningWorker = await startWorker(config);
    cleanups.push(() => worker.shutdown());
    // The two README commands work with nothing set: the first start makes an admin token and keeps it here.
    const bootstrap = await ensureBootstrapToken(worker.db, { file: path.join(dataRoot, 'api-admin-token') });
    const api: RunningApi = await startApi(config, { temporal, db: worker.db, logger: log });
    cleanups.push(() => api.close());
    const tokenLine =
      bootstrap.source === 'file'
        ? `  Admin token    ${path.relative(process.cwd(), bootstrap.file) || bootstrap.file}${bootstrap.created ? ' (made now)' : ''}: curl -H "Authorization: Bearer $(cat ${path.relative(process.cwd(), bootstrap.file)})" ${api.url}/v1/messages`
        : '  Admin token    API_ADMIN_TOKEN';

    const uiUrl = server?.uiUrl ?? null;
    const lines = [
      '',
      'interaction-data is running',
      `  Temporal       ${config.temporalAddress} (namespace ${config.temporalNamespace})${server ? `, data in ${path.relative(process.cwd(), server.dbFile)}` : ''}`,
      `  Temporal UI    ${uiUrl ?? '(the server already running, see its own UI)'}`,
      `  MySQL          ${config.mysqlUrl.replace(/\/\/([^:@/]+):[^@]*@/, '//$1:***@')}${mysql ? ' (private server under .data/mysql)' : ''}`,
      `  Worker         task queue interaction-data; TTL ${config.interactionDataTtl.text}, cleanup every ${config.cleanupInterval.text}`,
      archiveLine(gateway),
      `  HTTP API       ${api.url}  (health: ${api.url}/healthz, OpenAPI: ${api.url}/openapi.json)`,
      tokenLine,
      `  Admin CLI      npx interaction-data --help  (tokens: npx interaction-data tokens create --name <n> --scopes <s>)`,
      '  Ctrl-C stops everything started here.',
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);

    if (demo) {
      await runDemo({
        db: worker.db,
        lifecycle: new LifecycleClient(temporal.client),
        log,
        uiUrl,
        namespace: config.temporalNamespace,
        signal: abort.signal,
      });
    }
    await worker.done;
  } catch (err) {
    log.error(err instanceof Error ? err.message : String(err));
    await shutdown(1);
  }
}

void main();
