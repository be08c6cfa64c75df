/**
 * Percona Toolkit's pt-archiver, the tool this service is compared with, run the way the issue asks:
 * `--bulk-insert --bulk-delete --commit-each --limit 5000`, from a table of interaction rows (the shared
 * table of before migration 006, or a message's own table) into a plain archive table with the same
 * columns (primary key only).
 */
import { execFileSync } from 'node:child_process';
import { parseMysqlUrl } from '../../src/db/knex';
import type { MessageRef } from '../../src/shared/types';
import { HOT_TABLE_TEMPLATE } from '../../src/storage/hotTables';
import type { BenchDatabase } from './dataset';
import { runCommand, type CommandResult } from './proc';

export const PT_ARCHIVER_FLAGS = ['--bulk-insert', '--bulk-delete', '--commit-each', '--limit', '5000'] as const;

export function ptArchiverVersion(): string {
  try {
    return execFileSync('pt-archiver', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('pt-archiver is not installed: apt-get install -y percona-toolkit (Debian/Ubuntu), or set BENCH_SKIP_PT=1');
  }
}

/** Same columns as the interaction tables, no secondary indexes, no AUTO_INCREMENT: what an archive table is. */
export async function createPlainArchiveTable(bench: BenchDatabase, table: string): Promise<void> {
  const db = bench.db;
  await db.raw('DROP TABLE IF EXISTS ??', [table]);
  await db.raw('CREATE TABLE ?? LIKE ??', [table, HOT_TABLE_TEMPLATE]);
  const [indexes] = (await db.raw(
    `SELECT DISTINCT INDEX_NAME AS name FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY'`,
    [table],
  )) as [{ name: string }[]];
  for (const { name } of indexes) await db.raw('ALTER TABLE ?? DROP INDEX ??', [table, name]);
  await db.raw('ALTER TABLE ?? MODIFY id BIGINT UNSIGNED NOT NULL', [table]);
}

export interface PtArchiverRun extends CommandResult {
  command: string;
  /** pt-archiver's own --statistics breakdown, as printed. */
  statistics: string;
}

export interface PtArchiverSource {
  /** The index pt-archiver walks (its DSN's `i`); its own choice when not given. */
  index?: string;
  /** The table the rows leave (`interactions` itself is only the empty template of the messages' tables). */
  table: string;
  /** Flags after the issue's own, e.g. `--no-safe-auto-increment` for a table holding only the message. */
  extraFlags?: readonly string[];
}

export async function runPtArchiver(
  bench: BenchDatabase,
  target: MessageRef,
  destTable: string,
  source: PtArchiverSource,
): Promise<PtArchiverRun> {
  const c = parseMysqlUrl(bench.url);
  // pt-archiver's DSN: A charset, L enables LOAD DATA LOCAL INFILE (needed by --bulk-insert), i index.
  const dsn = [
    `h=${c.host}`,
    `P=${c.port}`,
    `u=${c.user}`,
    ...(c.password ? [`p=${c.password}`] : []),
    `D=${c.database}`,
    `t=${source.table}`,
    'A=utf8mb4',
    'L=1',
  ];
  if (source.index) dsn.push(`i=${source.index}`);
  // The message reference is a fixed benchmark identifier, not user input; pt-archiver takes a WHERE text.
  const where = `message_kind = '${target.kind}' AND message_id = '${target.id}'`;
  const args = [
    '--source',
    dsn.join(','),
    '--dest',
    `t=${destTable}`,
    '--where',
    where,
    ...PT_ARCHIVER_FLAGS,
    ...(source.extraFlags ?? []),
    '--statistics',
  ];
  const result = await runCommand('pt-archiver', args);
  if (result.code !== 0) throw new Error(`pt-archiver failed (${result.code}): ${result.stderr || result.stdout}`);
  const shown = args
    .map((a) => (/[\s',=]/.test(a) && !a.startsWith('h=') ? `"${a}"` : a))
    .join(' ')
    .replace(/p=[^,]*/, 'p=***');
  return { ...result, command: `pt-archiver ${shown}`, statistics: result.stdout.trim() };
}
