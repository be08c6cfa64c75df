import { parseDuration, type CalendarDuration } from './shared/duration';
import { temporalSettingsFromEnv, type TemporalTransport } from './temporal/envSettings';
import { DEFAULT_MOVE_THROTTLE, type MoveThrottleSettings } from './storage/moveThrottle';
import type { CallbackPolicy } from './callbacks/callbackUrl';

/** Rows per archived chunk unless ARCHIVE_CHUNK_ROWS says otherwise. */
export const DEFAULT_ARCHIVE_CHUNK_ROWS = 5000;

export interface Config {
  temporalAddress: string;
  temporalNamespace: string;
  /** TLS, API key and gRPC headers for Temporal (src/temporal/envSettings.ts). */
  temporalTransport: TemporalTransport;
  mysqlUrl: string;
  interactionDataTtl: CalendarDuration;
  cleanupInterval: CalendarDuration;
  /** How often each worker reads ingestion's notes of late interactions to wake asleep actors (src/storage/lateWakeups.ts). */
  lateWakeupPoll: CalendarDuration;
  /** Where the worker serves its Prometheus metrics (GET /metrics), or null for nowhere. */
  workerMetricsPort: number | null;
  /** host:port of the Temporal SDK's own Prometheus exporter in the worker, or null for none. */
  temporalSdkMetricsAddress: string | null;
  /** The worker's Temporal sizing (docs/SCALING.md). */
  worker: WorkerSizing;
  resendApiKey: string | null;
  /** The HMAC key callbacks are signed with (CALLBACK_SIGNING_SECRET); null: no callback is accepted. */
  callbackSigningSecret: string | null;
  /** Which callback URLs a restore may name (src/callbacks/callbackUrl.ts). */
  callbacks: CallbackPolicy;
  resendBaseUrl: string | null;
  emailFrom: string;
  port: number;
  host: string;
  /** Rows per long-term storage chunk; larger chunks compress better and cost more memory. */
  archiveChunkRows: number;
  /** How moves give way to the database between chunks (src/storage/moveThrottle.ts). */
  moveThrottle: MoveThrottleSettings;
  /** How long an actor held by the archiving pause waits before it looks again unless resuming wakes it. */
  archivingPauseRecheck: CalendarDuration;
  /** Where new generations are archived (src/archive/): object storage, or the `archive_chunks` table of MySQL. */
  archiveStore: ArchiveStoreName;
  /** The object store; null when none is configured (every S3 setting unset and ARCHIVE_STORE=mysql). */
  s3: S3Settings | null;
  /** Worker threads that encode and check the S3 store's Parquet chunks; 0 does it on the main thread. */
  archiveCodecThreads: number;
  /** Chunks a restore decodes and inserts at once: one decodes while the database inserts the other. */
  restoreParallelChunks: number;
  /** Connections each restored chunk's INSERT statements are spread over: the database's inserts use as many cores. */
  restoreInsertConnections: number;
  /** Bulk-restore watches (one per message being restored) a worker runs at once, on their own task queue. */
  bulkWatchSlots: number;
  /**
   * How long a users (User Data) CSV export may run. Its read transaction holds the message's table,
   * so the archive's DROP of that table waits for it; past the limit the export is cut off.
   */
  usersExportTimeLimit: CalendarDuration;
  /** HOT_TABLE_OWN_FROM_ROWS: a message gets a hot table of its own from this many rows on; 0 gives every message its own. */
  hotTableOwnFromRows: number;
  logLevel: string;
  /**
   * A workflow bundle built beforehand (`npm run build`, or the test runner once per run): the worker
   * loads it instead of bundling the sources at start.
   */
  workflowBundlePath: string | null;
}

export type ArchiveStoreName = 'mysql' | 's3';

export interface WorkerSizing {
  /** Actors kept in memory between their workflow tasks; an evicted one is replayed from its history when it next runs. */
  workflowCacheSize: number;
  /** Workflow tasks run at once. */
  workflowTaskSlots: number;
  /** Activities run at once (moves, reference counts, availability records, e-mails). */
  activitySlots: number;
  /** Local activities (deadline planning) run at once. */
  localActivitySlots: number;
  /** Archives, sweeps and restores run at once, on the moves task queue of their own. */
  moveSlots: number;
  /**
   * Moves Temporal hands out per second on the moves task queue, to all workers together (the SDK's
   * maxTaskQueueActivitiesPerSecond); null for no limit.
   */
  movesPerSecond: number | null;
  /**
   * Moves this worker starts per second at most (the SDK's maxActivitiesPerSecond, kept by the worker
   * itself, so exact even at a fraction of one a second, where Temporal's task-queue rate is not); null
   * for no limit.
   */
  workerMovesPerSecond: number | null;
}

/** Defaults: see docs/SCALING.md for how they were chosen. */
export const DEFAULT_WORKER_SIZING: WorkerSizing = {
  workflowCacheSize: 500,
  workflowTaskSlots: 40,
  activitySlots: 100,
  localActivitySlots: 100,
  moveSlots: 2,
  movesPerSecond: null,
  workerMovesPerSecond: null,
};

export interface S3Settings {
  /** Null for AWS S3 itself (the SDK's endpoint for the region). */
  endpoint: string | null;
  region: string;
  bucket: string;
  /** Key prefix without a trailing slash ('' for the bucket's root). */
  prefix: string;
  forcePathStyle: boolean;
  /** Null leaves the bucket's default (STANDARD on AWS). */
  storageClass: string | null;
  /** Attempts per request, the SDK's standard retry with backoff between them. */
  maxAttempts: number;
  /** How long one request may take before it is abandoned and retried. */
  requestTimeoutMs: number;
  /**
   * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the environment the settings were read from, when it
   * has both; null leaves credentials to the SDK's default chain (which reads this process's
   * environment, shared config, web identity, container and instance roles).
   */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null;
}

/** Storage classes whose objects can be read at once; GLACIER and DEEP_ARCHIVE need a restore request first. */
export const READABLE_STORAGE_CLASSES = ['STANDARD', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR'] as const;

function flag(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

/**
 * ARCHIVE_STORE and S3_*: `s3` needs a bucket; unset, the store is `s3` when S3_BUCKET is set and
 * `mysql` otherwise, so a deployment configured before the object store keeps archiving where it did.
 */
export function archiveStoreSettings(env: NodeJS.ProcessEnv = process.env): { archiveStore: ArchiveStoreName; s3: S3Settings | null } {
  const raw = env.ARCHIVE_STORE?.trim();
  if (raw && raw !== 's3' && raw !== 'mysql') throw new Error(`ARCHIVE_STORE must be s3 or mysql, got "${raw}"`);
  const bucket = env.S3_BUCKET?.trim() || '';
  const archiveStore: ArchiveStoreName = raw === 's3' || raw === 'mysql' ? raw : bucket ? 's3' : 'mysql';
  if (!bucket) {
    if (archiveStore === 's3') throw new Error('ARCHIVE_STORE=s3 needs S3_BUCKET (and S3_ENDPOINT for anything but AWS S3)');
    return { archiveStore, s3: null };
  }
  const storageClass = env.S3_STORAGE_CLASS?.trim().toUpperCase() || null;
  if (storageClass && !(READABLE_STORAGE_CLASSES as readonly string[]).includes(storageClass)) {
    throw new Error(
      `S3_STORAGE_CLASS must be one of ${READABLE_STORAGE_CLASSES.join(', ')}, got "${env.S3_STORAGE_CLASS}"` +
        ' (GLACIER and DEEP_ARCHIVE objects cannot be read without a restore request of their own)',
    );
  }
  const endpoint = env.S3_ENDPOINT?.trim() || null;
  if (endpoint && !/^https?:\/\/[^/]+/.test(endpoint)) throw new Error(`S3_ENDPOINT must be an http(s) URL, got "${endpoint}"`);
  return {
    archiveStore,
    s3: {
      endpoint,
      region: env.S3_REGION?.trim() || env.AWS_REGION?.trim() || 'us-east-1',
      bucket,
      prefix: (env.S3_PREFIX ?? 'interaction-data').trim().replace(/^\/+|\/+$/g, ''),
      forcePathStyle: flag('S3_FORCE_PATH_STYLE', env.S3_FORCE_PATH_STYLE, endpoint !== null),
      storageClass,
      maxAttempts: positiveInt('S3_MAX_ATTEMPTS', env.S3_MAX_ATTEMPTS, 5),
      requestTimeoutMs: positiveInt('S3_REQUEST_TIMEOUT_MS', env.S3_REQUEST_TIMEOUT_MS, 30_000),
      credentials:
        env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
          ? {
              accessKeyId: env.AWS_ACCESS_KEY_ID,
              secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
              ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
            }
          : null,
    },
  };
}

export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306/interaction_data';

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

function nonNegativeInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number (0 or more), got "${raw}"`);
  return n;
}

function nonNegativeNumber(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new Error(`${name} must be a number from 0 to 100, got "${raw}"`);
  return n;
}

function duration(name: string, raw: string | undefined, fallback: string): CalendarDuration {
  try {
    return parseDuration(raw && raw.trim() ? raw : fallback);
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * `USERS_EXPORT_TIME_LIMIT`, on its own: the worker's archive bounds its DROP TABLE by it too
 * (src/storage/hotTables.ts) without being handed the whole configuration.
 */
export function usersExportTimeLimit(env: NodeJS.ProcessEnv = process.env): CalendarDuration {
  return fixedDuration('USERS_EXPORT_TIME_LIMIT', env.USERS_EXPORT_TIME_LIMIT, '2 minutes');
}

/** Messages below this many hot rows share a table (src/storage/hotTables.ts). */
export const DEFAULT_HOT_TABLE_OWN_FROM_ROWS = 10_000;

/**
 * `HOT_TABLE_OWN_FROM_ROWS`, on its own: ingestion and restores read it where they make tables
 * (src/storage/hotTables.ts), in the API and the worker alike. 0: every message has a table of its own.
 */
export function hotTableOwnFromRows(env: NodeJS.ProcessEnv = process.env): number {
  return nonNegativeInt('HOT_TABLE_OWN_FROM_ROWS', env.HOT_TABLE_OWN_FROM_ROWS, DEFAULT_HOT_TABLE_OWN_FROM_ROWS);
}

/** A duration a timer can count: a fixed length (no calendar months), and one Node can count (under 24.8 days). */
function fixedDuration(name: string, raw: string | undefined, fallback: string): CalendarDuration {
  const d = duration(name, raw, fallback);
  if (d.months > 0 || d.milliseconds > 86_400_000) throw new Error(`${name} must be at most 1 day, got "${d.text}"`);
  return d;
}

/** CALLBACK_ALLOWED_HOSTS, CALLBACK_ALLOW_HTTP and whether CALLBACK_SIGNING_SECRET is set: what the API accepts. */
export function callbackPolicy(env: NodeJS.ProcessEnv = process.env): CallbackPolicy {
  return {
    allowedHosts: (env.CALLBACK_ALLOWED_HOSTS ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
    allowHttp: flag('CALLBACK_ALLOW_HTTP', env.CALLBACK_ALLOW_HTTP, false),
    signing: Boolean(callbackSecret(env)),
  };
}

/** CALLBACK_SIGNING_SECRET: long enough to be a key, not a password. */
function callbackSecret(env: NodeJS.ProcessEnv): string | null {
  const secret = env.CALLBACK_SIGNING_SECRET;
  if (!secret) return null;
  if (secret.length < 32) throw new Error('CALLBACK_SIGNING_SECRET must be at least 32 characters (e.g. `openssl rand -hex 32`)');
  return secret;
}

/** Reads and validates the environment once; a bad value stops the process with the variable's name. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = positiveInt('PORT', env.PORT, 3000);
  if (port > 65535) throw new Error(`PORT must be at most 65535, got "${env.PORT}"`);
  const temporal = temporalSettingsFromEnv(env);
  return {
    temporalAddress: temporal.address,
    temporalNamespace: temporal.namespace,
    temporalTransport: temporal.transport,
    mysqlUrl: env.MYSQL_URL || DEFAULT_MYSQL_URL,
    interactionDataTtl: duration('INTERACTION_DATA_TTL', env.INTERACTION_DATA_TTL, '3 months'),
    cleanupInterval: duration('CLEANUP_INTERVAL', env.CLEANUP_INTERVAL, '1 day'),
    lateWakeupPoll: fixedDuration('LATE_WAKEUP_POLL', env.LATE_WAKEUP_POLL, '5 seconds'),
    worker: {
      workflowCacheSize: nonNegativeInt(
        'WORKER_WORKFLOW_CACHE_SIZE',
        env.WORKER_WORKFLOW_CACHE_SIZE,
        DEFAULT_WORKER_SIZING.workflowCacheSize,
      ),
      workflowTaskSlots: positiveInt('WORKER_WORKFLOW_TASK_SLOTS', env.WORKER_WORKFLOW_TASK_SLOTS, DEFAULT_WORKER_SIZING.workflowTaskSlots),
      activitySlots: positiveInt('WORKER_ACTIVITY_SLOTS', env.WORKER_ACTIVITY_SLOTS, DEFAULT_WORKER_SIZING.activitySlots),
      localActivitySlots: positiveInt(
        'WORKER_LOCAL_ACTIVITY_SLOTS',
        env.WORKER_LOCAL_ACTIVITY_SLOTS,
        DEFAULT_WORKER_SIZING.localActivitySlots,
      ),
      moveSlots: positiveInt('WORKER_MOVE_SLOTS', env.WORKER_MOVE_SLOTS, DEFAULT_WORKER_SIZING.moveSlots),
      movesPerSecond: nonNegativeNumber('MOVES_PER_SECOND', env.MOVES_PER_SECOND, 0) || null,
      workerMovesPerSecond: nonNegativeNumber('WORKER_MOVES_PER_SECOND', env.WORKER_MOVES_PER_SECOND, 0) || null,
    },
    workerMetricsPort: env.WORKER_METRICS_PORT ? positiveInt('WORKER_METRICS_PORT', env.WORKER_METRICS_PORT, 0) : null,
    temporalSdkMetricsAddress: env.TEMPORAL_SDK_METRICS_ADDRESS || null,
    resendApiKey: env.RESEND_API_KEY || null,
    callbackSigningSecret: callbackSecret(env),
    callbacks: callbackPolicy(env),
    resendBaseUrl: env.RESEND_BASE_URL || null,
    workflowBundlePath: env.WORKFLOW_BUNDLE_PATH || null,
    emailFrom: env.EMAIL_FROM || 'Interaction data <interaction-data@localhost>',
    port,
    // Loopback unless told otherwise: a container, or a host behind a proxy, sets HOST=0.0.0.0 itself.
    host: env.HOST || '127.0.0.1',
    archiveChunkRows: positiveInt('ARCHIVE_CHUNK_ROWS', env.ARCHIVE_CHUNK_ROWS, DEFAULT_ARCHIVE_CHUNK_ROWS),
    moveThrottle: {
      maxThreadsRunning: nonNegativeInt('MOVE_MAX_THREADS_RUNNING', env.MOVE_MAX_THREADS_RUNNING, DEFAULT_MOVE_THROTTLE.maxThreadsRunning),
      niceRatio: nonNegativeNumber('MOVE_NICE_RATIO', env.MOVE_NICE_RATIO, DEFAULT_MOVE_THROTTLE.niceRatio),
      maxBackoffMs: DEFAULT_MOVE_THROTTLE.maxBackoffMs,
    },
    archivingPauseRecheck: fixedDuration('ARCHIVING_PAUSE_RECHECK', env.ARCHIVING_PAUSE_RECHECK, '5 minutes'),
    ...archiveStoreSettings(env),
    archiveCodecThreads: nonNegativeInt('ARCHIVE_CODEC_THREADS', env.ARCHIVE_CODEC_THREADS, 1),
    restoreParallelChunks: positiveInt('RESTORE_PARALLEL_CHUNKS', env.RESTORE_PARALLEL_CHUNKS, 1),
    restoreInsertConnections: positiveInt('RESTORE_INSERT_CONNECTIONS', env.RESTORE_INSERT_CONNECTIONS, 2),
    bulkWatchSlots: positiveInt('BULK_WATCH_SLOTS', env.BULK_WATCH_SLOTS, 200),
    usersExportTimeLimit: usersExportTimeLimit(env),
    hotTableOwnFromRows: hotTableOwnFromRows(env),
    logLevel: env.LOG_LEVEL || 'info',
  };
}
