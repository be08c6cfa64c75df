import { backOff } from 'exponential-backoff';
import knexFactory, { type Knex } from 'knex';
import type { Connection } from 'mysql2';
import { mysqlTlsFromEnv, type MysqlTls } from './mysqlTls';
import * as migration001 from './migrations/001_lifecycle';
import * as migration002 from './migrations/002_data_plane';
import * as migration003 from './migrations/003_bulk_restore';
import * as migration004 from './migrations/004_event_ids_in_ledger';
import * as migration005 from './migrations/005_user_messages';
import * as migration006 from './migrations/006_hot_tables';
import * as migration007 from './migrations/007_exact_ids';
import * as migration008 from './migrations/008_move_fences';
import * as migration009 from './migrations/009_restore_requests';
import * as migration010 from './migrations/010_tokens_and_audit';
import * as migration011 from './migrations/011_object_store';
import * as migration012 from './migrations/012_chunk_user_filters';
import * as migration013 from './migrations/013_erasure';
import * as migration014 from './migrations/014_late_wakeups';
import * as migration015 from './migrations/015_hot_table_changes';
import * as migration016 from './migrations/016_shared_hot_tables';
import * as migration017 from './migrations/017_brake_and_callbacks';

export type Db = Knex;

interface ParsedUrl {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export function parseMysqlUrl(url: string): ParsedUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`MYSQL_URL is not a URL: expected mysql://user:password@host:port/database`);
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new Error(`MYSQL_URL must start with mysql://, got ${u.protocol}//`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(database)) throw new Error(`MYSQL_URL must name a database (letters, digits, _), got "${database}"`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username || 'root'),
    password: decodeURIComponent(u.password),
    database,
  };
}

export interface ConnectionSecurity {
  /** mysql2's `ssl`; undefined reads MYSQL_SSL* from the environment (src/db/mysqlTls.ts), null is plaintext. */
  tls?: MysqlTls | null;
}

/** Every connection the service opens gets the same TLS settings, whichever function opens it. */
function tlsOption(opts: ConnectionSecurity): { ssl?: MysqlTls } {
  const tls = opts.tls === undefined ? mysqlTlsFromEnv() : opts.tls;
  return tls ? { ssl: tls } : {};
}

/**
 * Dates and BIGINTs come back as strings so that an archived row is restored byte for byte, with no
 * time zone or float conversion in between.
 */
export function createDb(url: string, pool: { min: number; max: number } = { min: 0, max: 10 }, opts: ConnectionSecurity = {}): Db {
  const c = parseMysqlUrl(url);
  return knexFactory({
    client: 'mysql2',
    connection: {
      host: c.host,
      port: c.port,
      user: c.user,
      password: c.password,
      database: c.database,
      charset: 'utf8mb4',
      timezone: 'Z',
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      ...tlsOption(opts),
    },
    pool,
  });
}

/** Creates the database named in the URL when the server does not have it yet. */
export async function ensureDatabase(url: string, opts: ConnectionSecurity = {}): Promise<void> {
  const c = parseMysqlUrl(url);
  const admin = knexFactory({
    client: 'mysql2',
    connection: { host: c.host, port: c.port, user: c.user, password: c.password, ...tlsOption(opts) },
    pool: { min: 0, max: 1 },
  });
  try {
    await admin.raw('CREATE DATABASE IF NOT EXISTS ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci', [c.database]);
  } finally {
    await admin.destroy();
  }
}

/** The two calls of knex's pool that lend out one of its mysql2 connections. */
interface ConnectionPool {
  acquireConnection(): Promise<Connection>;
  releaseConnection(conn: Connection): Promise<void>;
}

/**
 * knex's pool, for code that hands statements to a mysql2 connection itself. knex types its client
 * as `any`; this is the one place that says what those calls take and give.
 */
export function connectionPool(db: Db): ConnectionPool {
  return db.client as ConnectionPool;
}

const migrations: Record<string, Knex.Migration> = {
  '001_lifecycle': migration001,
  '002_data_plane': migration002,
  '003_bulk_restore': migration003,
  '004_event_ids_in_ledger': migration004,
  '005_user_messages': migration005,
  '006_hot_tables': migration006,
  '007_exact_ids': migration007,
  '008_move_fences': migration008,
  '009_restore_requests': migration009,
  '010_tokens_and_audit': migration010,
  '011_object_store': migration011,
  '012_chunk_user_filters': migration012,
  '013_erasure': migration013,
  '014_late_wakeups': migration014,
  '015_hot_table_changes': migration015,
  '016_shared_hot_tables': migration016,
  '017_brake_and_callbacks': migration017,
};

/** Migrations are compiled in, so they run the same from source, from a build or in a container. */
export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: () => Promise.resolve(Object.keys(migrations).sort()),
  getMigrationName: (name) => name,
  getMigration: (name) => Promise.resolve(migrations[name]),
};

/**
 * Idempotent: applies only what is missing. Workers and API replicas starting together race for
 * knex's migration lock (or to create its bookkeeping tables); the loser waits and tries again, and
 * then finds nothing left to do.
 */
export async function migrateToLatest(db: Db, waitMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + waitMs;
  const raced = (err: unknown) => /locked|already exists|Duplicate entry/i.test((err as Error).message ?? '') && Date.now() <= deadline;
  const latest = () => db.migrate.latest({ migrationSource }) as Promise<[number, string[]]>;
  const [, applied] = await backOff(latest, {
    numOfAttempts: Infinity,
    startingDelay: 1_000,
    timeMultiple: 1,
    jitter: 'full',
    retry: raced,
  });
  return applied;
}

/**
 * `MIGRATE_ON_START` (default true): whether opening the database also creates and migrates it.
 * false is for a runtime database user without the privileges to (docker-compose.yml runs the
 * migrations as a user of their own, before the worker and the API start).
 */
export function migrateOnStart(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.MIGRATE_ON_START?.trim();
  if (!v || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new Error(`MIGRATE_ON_START must be true or false, got "${v}"`);
}

const ER_NO_SUCH_TABLE = 1146;

/** Migrations this code has and the database has not run; a read only, unlike knex's own listing, which creates its tables. */
export async function pendingMigrations(db: Db): Promise<string[]> {
  let done: { name: string }[];
  try {
    done = await db('knex_migrations').select<{ name: string }[]>('name');
  } catch (err) {
    if ((err as { errno?: number }).errno !== ER_NO_SUCH_TABLE) throw err;
    done = [];
  }
  const applied = new Set(done.map((r) => r.name));
  return (await migrationSource.getMigrations([])).filter((name) => !applied.has(name));
}

export interface OpenDatabaseOptions extends ConnectionSecurity {
  /** Create and migrate the database (default: MIGRATE_ON_START); false only checks that it is migrated. */
  migrate?: boolean;
}

export async function openDatabase(url: string, opts: OpenDatabaseOptions = {}): Promise<Db> {
  // Read once for both connections; null (plaintext) keeps the environment from being read again.
  const tls = (opts.tls === undefined ? mysqlTlsFromEnv() : opts.tls) ?? null;
  if (opts.migrate ?? migrateOnStart()) {
    await ensureDatabase(url, { tls });
    const db = createDb(url, undefined, { tls });
    await migrateToLatest(db);
    return db;
  }
  const db = createDb(url, undefined, { tls });
  try {
    const pending = await pendingMigrations(db);
    if (pending.length > 0) {
      throw new Error(
        `the database in MYSQL_URL lacks migrations ${pending.join(', ')} and MIGRATE_ON_START=false: run \`npm run migrate\` ` +
          '(as a database user allowed to change the schema) first',
      );
    }
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
  return db;
}
