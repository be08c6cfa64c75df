/**
 * `npm run migrate`: creates the database in MYSQL_URL if missing and applies the migrations it lacks,
 * then exits. Run it as a database user allowed to change the schema, before workers and API replicas
 * that run as a user who is not (MIGRATE_ON_START=false); docker-compose.yml's `migrate` service does.
 * Safe to run again, and beside running services: knex's migration lock lets one run at a time.
 */
import { loadConfig } from '../config';
import { createLogger } from '../logger';
import { ensureDatabase, createDb, migrateToLatest, pendingMigrations } from './knex';
import { mysqlTlsFromEnv } from './mysqlTls';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('migrate', config.logLevel);
  const tls = mysqlTlsFromEnv() ?? null;
  await ensureDatabase(config.mysqlUrl, { tls });
  const db = createDb(config.mysqlUrl, { min: 0, max: 1 }, { tls });
  try {
    const applied = await migrateToLatest(db);
    const left = await pendingMigrations(db);
    if (left.length > 0) throw new Error(`migrations still pending after the run: ${left.join(', ')}`);
    log.info({ applied }, applied.length ? `applied ${applied.length} migration(s)` : 'the database is up to date');
  } finally {
    await db.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
