/**
 * A real stack for one test file: the Temporal dev server the test runner started (or a private one),
 * a namespace of the file's own (so workers of different files never steal each other's tasks on the
 * shared `interaction-data` task queue), a MySQL database of its own, migrated, and helpers to run
 * workers in-process or as killable child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { after, before, beforeEach } from 'node:test';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { WorkerOptions } from '@temporalio/worker';
import { msToTs } from '@temporalio/common/lib/time';
import { loadConfig, type ArchiveStoreName, type Config } from '../../src/config';
import { embeddedGatewayEnv, startEmbeddedGateway, type EmbeddedGateway } from '../../src/s3/embeddedGateway';
import { ensureVersityBinary } from '../../scripts/ensureVersity';
import { configuredStores } from '../../src/archive/configuredStores';
import type { ArchiveStores } from '../../src/archive/store';
import { createDb, ensureDatabase, migrateToLatest, type Db } from '../../src/db/knex';
import { LifecycleClient } from '../../src/client/lifecycleClient';
import { ensureSearchAttributes } from '../../src/temporal/searchAttributes';
import { freePort, startDevServer, startDevServerOnFreePort, type DevServerHandle } from '../../src/temporal/devServer';
import { ensureTemporalBinary } from '../../scripts/ensureTemporal';
import { startWorker, type RunningWorker } from '../../src/worker';
import type { MessageRef } from '../../src/shared/types';
import { lifecycleWorkflowId, TASK_QUEUE } from '../../src/shared/workflowId';
import { unreplayableHistories } from './replayAll';
import type { InteractionRow } from '../../src/storage/chunkCodec';
import { compareIds, INTERACTION_COLUMNS } from '../../src/storage/chunkCodec';
import { ensureHotTable, hotTableName, messageHotTables } from '../../src/storage/hotTables';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
const BASE_MYSQL = process.env.TEST_MYSQL_URL || process.env.MYSQL_URL || 'mysql://root@127.0.0.1:3306/interaction_data';

export interface StackOptions {
  ttl?: string;
  cleanupInterval?: string;
  chunkRows?: number;
  env?: Record<string, string>;
  /** Start a private dev server on a SQLite file (tests that restart the server). */
  privateServer?: boolean;
  /** With `privateServer`: the server's Web UI too, at `stack.server.uiUrl`. */
  webUi?: boolean;
  /** Where archives go: an embedded S3 gateway of the file's own, or MySQL. TEST_ARCHIVE_STORE, else s3. */
  archiveStore?: ArchiveStoreName;
  /**
   * History length at which Temporal suggests continue-as-new (default 60, so tests cross it); larger for a
   * recording that must keep a whole lifecycle in one run. Applies to a private server only.
   */
  continueAsNewAfter?: number;
}

/** The archive store test files use unless they choose one: `npm test` runs with s3, TEST_ARCHIVE_STORE=mysql runs them against the other. */
export const TEST_ARCHIVE_STORE: ArchiveStoreName = process.env.TEST_ARCHIVE_STORE === 'mysql' ? 'mysql' : 's3';

/** An S3 gateway of the test file's own, over a fresh temporary directory. */
export async function startTestGateway(): Promise<EmbeddedGateway> {
  return startEmbeddedGateway({
    binary: await ensureVersityBinary(),
    dataDir: mkdtempSync(path.join(os.tmpdir(), 'idtest-s3-')),
    accessKey: 'test-access-key',
    secretKey: 'test-secret-key',
    bucket: 'interaction-data-test',
  });
}

export interface TestStack {
  config: Config;
  env: Record<string, string>;
  db: Db;
  connection: Connection;
  client: Client;
  lifecycle: LifecycleClient;
  server: DevServerHandle | null;
  /** The file's own S3 gateway when archives go to S3. */
  gateway: EmbeddedGateway | null;
  /** The archive stores of the stack's configuration, to read what the worker archived. */
  stores: ArchiveStores;
  startWorker(overrides?: Partial<WorkerOptions>): Promise<RunningWorker>;
  spawnWorker(extraEnv?: Record<string, string>): ChildProcess;
  /** Replaces the private server by a new process on the same database file. */
  restartServer(mode: 'kill' | 'stop'): Promise<void>;
  close(): Promise<void>;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/**
 * A migrated database of its own for a describe block that needs MySQL but no Temporal: created before
 * its tests, the given tables emptied before each, dropped after. `get()` is the open handle.
 */
export function useThrowawayDatabase(emptied: readonly string[]): { get(): Db } {
  const base = process.env.TEST_MYSQL_URL || process.env.MYSQL_URL || 'mysql://root@127.0.0.1:3306/interaction_data';
  const database = uniqueName('idtest');
  let db: Db | undefined;
  before(async () => {
    const url = withDatabase(base, database);
    await ensureDatabase(url);
    db = createDb(url);
    await migrateToLatest(db);
  });
  after(async () => {
    await db?.raw('DROP DATABASE IF EXISTS ??', [database]).catch(() => undefined);
    await db?.destroy();
  });
  beforeEach(async () => {
    for (const t of emptied) {
      // Every message's hot rows, wherever they are: each table of them goes, and the registry with them.
      if (t === 'interactions') await dropHotTables(db as Db);
      else await (db as Db)(t).delete();
    }
  });
  return {
    get() {
      if (!db) throw new Error('the throwaway database is only open inside its describe block');
      return db;
    },
  };
}

const ignoreMissingTable = (err: unknown) => {
  if ((err as { errno?: number }).errno !== 1146) throw err;
};

/**
 * Drops every message's table of hot rows and empties their registry, leaving the template alone, and
 * the shared tables (which processes remember once made) registered and empty.
 */
export async function dropHotTables(db: Db): Promise<void> {
  const entries = await db('hot_tables').whereNull('shared_in').select<{ table_no: string; role: string }[]>('table_no', 'role');
  for (const e of entries) {
    if (e.role === 'shared') await db.raw('DELETE FROM ??', [hotTableName(e.table_no)]).catch(ignoreMissingTable);
    else await db.raw(`DROP TABLE IF EXISTS ??`, [hotTableName(e.table_no)]);
  }
  await db('hot_tables').whereNot({ role: 'shared' }).delete();
  // Rows a test put in the template itself, as they were before migration 006.
  await db('interactions').delete();
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function registerNamespace(connection: Connection, namespace: string): Promise<void> {
  await connection.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
  for (let i = 0; i < 100; i++) {
    try {
      await connection.workflowService.describeNamespace({ namespace });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`namespace ${namespace} did not become available`);
}

export async function createStack(opts: StackOptions = {}): Promise<TestStack> {
  let server: DevServerHandle | null = null;
  let address = process.env.TEST_TEMPORAL_ADDRESS ?? '';
  const dbFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'idtest-')), 'temporal.db');
  const binary = await ensureTemporalBinary();
  // Continue-as-new is suggested after a few dozen events, so tests also cross it (as with `npm test`).
  const serverOptions = {
    binary,
    uiPort: opts.webUi ? await freePort() : null,
    dbFile,
    logLevel: 'error',
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': opts.continueAsNewAfter ?? 60 },
  } as const;
  if (!address || opts.privateServer || opts.continueAsNewAfter !== undefined) {
    server = await startDevServerOnFreePort(serverOptions);
    address = server.address;
  }
  // A restarted server comes back on the same port: the worker and clients know only that address.
  const launch = () => startDevServer({ ...serverOptions, port: (server as DevServerHandle).port });
  const namespace = uniqueName('test');
  const database = uniqueName('idtest');
  const mysqlUrl = withDatabase(BASE_MYSQL, database);
  const gateway = (opts.archiveStore ?? TEST_ARCHIVE_STORE) === 's3' ? await startTestGateway() : null;
  const env: Record<string, string> = {
    ...(gateway ? embeddedGatewayEnv(gateway) : { ARCHIVE_STORE: 'mysql', S3_BUCKET: '' }),
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: namespace,
    MYSQL_URL: mysqlUrl,
    INTERACTION_DATA_TTL: opts.ttl ?? '3 seconds',
    CLEANUP_INTERVAL: opts.cleanupInterval ?? '2 seconds',
    LATE_WAKEUP_POLL: '300 ms',
    ARCHIVE_CHUNK_ROWS: String(opts.chunkRows ?? 500),
    LOG_LEVEL: 'warn',
    // The SDK's notice that its releases after January 2027 need Node 22, once per process.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...opts.env,
  };
  const config = loadConfig({ ...process.env, ...env, RESEND_API_KEY: env.RESEND_API_KEY ?? '' });
  const archive = configuredStores(config);

  await ensureDatabase(mysqlUrl);
  const db = createDb(mysqlUrl);
  await migrateToLatest(db);

  let connection = await Connection.connect({ address });
  await registerNamespace(connection, namespace);
  await ensureSearchAttributes(connection, namespace);
  let client = new Client({ connection, namespace });
  const workers: RunningWorker[] = [];
  const children = new Set<ChildProcess>();

  const stack: TestStack = {
    config,
    env,
    db,
    get connection() {
      return connection;
    },
    get client() {
      return client;
    },
    get lifecycle() {
      return new LifecycleClient(client);
    },
    get server() {
      return server;
    },
    gateway,
    stores: archive.stores,
    async startWorker(overrides = {}) {
      const w = await startWorker(config, overrides);
      workers.push(w);
      return w;
    },
    spawnWorker(extraEnv = {}) {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/worker.ts')], {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env, LOG_FORMAT: 'json', ...extraEnv },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    async restartServer(mode) {
      if (!server) throw new Error('restartServer needs privateServer: true');
      await connection.close();
      if (mode === 'kill') await server.kill();
      else await server.stop();
      server = await launch();
      connection = await Connection.connect({ address });
      client = new Client({ connection, namespace });
    },
    async close() {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.shutdown().catch(() => undefined)));
      // Every history the file made must replay with the code that made it (test/support/replayAll.ts).
      const unreplayable = await unreplayableHistories(client).catch((err: unknown) => [`the histories could not be read: ${String(err)}`]);
      await connection.close();
      await db.raw('DROP DATABASE IF EXISTS ??', [database]).catch(() => undefined);
      await db.destroy();
      if (server) await server.stop();
      await archive.close();
      if (gateway) {
        await gateway.stop();
        rmSync(gateway.dataDir, { recursive: true, force: true });
      }
      if (unreplayable.length > 0) throw new Error(`histories that do not replay:\n${unreplayable.join('\n')}`);
    },
  };
  return stack;
}

/** Rejects, naming what was awaited, when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

let eventSeq = 0;

/** Inserts `count` interaction rows for a message, with a realistic spread of users, types and variants. */
export async function seedInteractions(
  db: Db,
  ref: MessageRef,
  count: number,
  opts: { batch?: number; table?: string } = {},
): Promise<void> {
  const run = randomBytes(3).toString('hex');
  const types = ['received', 'opened', 'clicked', 'converted', 'control_group'];
  const rows = Array.from({ length: count }, (_, i) => ({
    event_id: `${ref.id}-${run}-${eventSeq++}`,
    message_kind: ref.kind,
    message_id: ref.id,
    user_id: `user-${i % 997}`,
    event_type: types[i % types.length],
    variant_id: ref.kind === 'campaign' ? `variant-${i % 3}` : null,
    step_id: ref.kind === 'canvas' ? `step-${i % 4}` : null,
    variation_id: ref.kind === 'canvas' ? `variation-${i % 2}` : null,
    alias: i % 5 === 2 ? `cta "${i % 7}" ünïcødé ✓` : null,
    channel: ['email', 'push', 'sms', null][i % 4],
    occurred_at: new Date(Date.UTC(2026, 0, 1) + i * 1013).toISOString().slice(0, 23).replace('T', ' '),
  }));
  const batch = opts.batch ?? 1000;
  const name = opts.table ?? (await ensureHotTable(db, ref, { rows: rows.length })).name;
  for (let i = 0; i < rows.length; i += batch) await db(name).insert(rows.slice(i, i + batch));
}

/** Every hot row of a message (its current table and any table an archive is draining), in id order, as stored. */
export async function hotRows(db: Db, ref: MessageRef): Promise<InteractionRow[]> {
  // A sweep may drop a table between the listing and the read: read the listing again then.
  for (let attempt = 1; ; attempt++) {
    try {
      const rows: InteractionRow[] = [];
      for (const t of await messageHotTables(db, ref))
        rows.push(
          ...((await db(t.name)
            .where({ message_kind: ref.kind, message_id: ref.id })
            .select(INTERACTION_COLUMNS)
            .orderBy('id')) as InteractionRow[]),
        );
      return rows.sort((a, b) => compareIds(String(a.id), String(b.id)));
    } catch (err) {
      if (attempt >= 5 || (err as { errno?: number }).errno !== 1146) throw err;
    }
  }
}

/** How many hot rows the message has, in every table that holds some. */
export async function hotRowCount(db: Db, ref: MessageRef): Promise<number> {
  let n = 0;
  for (const t of await messageHotTables(db, ref)) {
    try {
      n += Number((await db(t.name).where({ message_kind: ref.kind, message_id: ref.id }).count<{ n: number }[]>('* as n'))[0].n);
    } catch (err) {
      // A draining table dropped before its registry row went (a worker killed between the two, or a
      // read between them) holds no row; its next attempt removes the row.
      if ((err as { errno?: number }).errno !== 1146) throw err;
    }
  }
  return n;
}

/** Restore e-mails to `to` whose send Resend has answered (the outbox records that after the response). */
export interface OutboxRow {
  id: number;
  to_address: string;
  subject: string;
  body: string;
  provider: string;
  provider_message_id: string | null;
  sent_at: Date;
}

export async function sentEmailsTo(db: Db, to: string): Promise<OutboxRow[]> {
  return db('email_outbox').where({ to_address: to }).whereNotNull('sent_at');
}

export async function archivedRowCount(db: Db, ref: MessageRef): Promise<number> {
  const row = await db('archive_chunks')
    .where({ message_kind: ref.kind, message_id: ref.id })
    .whereNotNull('verified_at')
    .sum<{ n: string | null }>('row_count as n')
    .first();
  return Number(row?.n ?? 0);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `check` returns a truthy value; fails with the last value seen. */
export async function waitFor<T>(what: string, check: () => Promise<T>, timeoutMs = 60_000, everyMs = 250): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

/**
 * Waits until the actor has nothing in flight: no activity pending and no workflow task scheduled or
 * running. A check that something did not happen (a second e-mail, a second restore) is made then:
 * with nothing in flight, nothing more happens until the actor is told something or a timer fires.
 */
export async function waitUntilSettled(stack: TestStack, actor: MessageRef | string, timeoutMs = 30_000): Promise<void> {
  const workflowId = typeof actor === 'string' ? actor : lifecycleWorkflowId(actor);
  const handle = stack.client.workflow.getHandle(workflowId);
  await waitFor(
    `${workflowId} to have nothing in flight`,
    async () => {
      const { status, raw } = await handle.describe();
      return status.name !== 'RUNNING' || (!raw.pendingWorkflowTask && (raw.pendingActivities ?? []).length === 0);
    },
    timeoutMs,
    100,
  );
}

/** Waits until a worker polls the actors' task queue, so that the first Updates do not wait out their deadline on a worker still starting. */
export async function waitForPollers(stack: TestStack, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    'a worker polling the task queue',
    async () =>
      ((
        await stack.connection.workflowService.describeTaskQueue({
          namespace: stack.env.TEMPORAL_NAMESPACE,
          taskQueue: { name: TASK_QUEUE },
          taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
        })
      ).pollers?.length ?? 0) > 0,
    timeoutMs,
    100,
  );
}

/** Waits until the actor reports `state`, returning that status. */
export async function waitForState(stack: TestStack, ref: MessageRef, state: string, timeoutMs = 60_000) {
  return waitFor(
    `${ref.kind}:${ref.id} to be ${state}`,
    async () => {
      const s = await stack.lifecycle.status(ref.kind, ref.id).catch(() => null);
      return s && s.state === state ? s : null;
    },
    timeoutMs,
  );
}
