/**
 * The hot store's fixed cost per message: for each size in BENCH_TABLE_COUNTS (default
 * 1000,10000,100000), that many small messages (BENCH_TABLE_ROWS rows each, default 3) get their place
 * as ingestion makes it (src/storage/hotTables.ts ensureHotTable), in both layouts: a table of their own
 * each (HOT_TABLE_OWN_FROM_ROWS=0), and segments of the shared tables (the default for small
 * messages). Reported per message: disk (the files in the data directory, and what information_schema
 * counts), the server's resident memory, the time to make its place and write its rows, a schema change
 * of every hot table as a migration runs it (src/storage/hotTableSchema.ts), and what the archive pays
 * at the end (a DROP TABLE, or the segment's DELETE). Beside the own tables, the same rows in one plain
 * table, as the data alone would take.
 *
 *   npm run bench:hot-tables
 *   BENCH_TABLE_COUNTS=1000,10000 npm run bench:hot-tables      quicker
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ensureHotTable, HOT_TABLE_TEMPLATE, sharedHotTables } from '../src/storage/hotTables';
import { addHotColumn } from '../src/storage/hotTableChanges';
import { changeEveryHotTable } from '../src/storage/hotTableSchema';
import type { MessageRef } from '../src/shared/types';
import { createBenchDatabase, forEachLimited } from './lib/dataset';
import { fmtInt, readMemory } from './lib/proc';
import { envIntList, exitWhenSettled, log, saveResults, table } from './lib/report';
import { runOnBenchServer, type BenchServer } from './lib/server';
import { REPO_ROOT } from './lib/stack';

const CONCURRENCY = 8;

const fmtKB = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;

type Layout = 'own' | 'segments';

interface SizeFigures {
  layout: Layout;
  /** Messages. */
  tables: number;
  rowsEach: number;
  diskBytesPerTable: number;
  schemaBytesPerTable: number;
  serverRssBytesPerTable: number | null;
  createMsPerTable: number;
  alterMsPerTable: number;
  dropMsPerTable: number;
  /** The same rows in one plain table, per message (own layout only). */
  sharedBytesPerMessage: number | null;
  /** Tables the schema change altered, the template aside. */
  tablesAltered: number;
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const st = statSync(path.join(dir, name));
    total += st.isDirectory() ? dirBytes(path.join(dir, name)) : st.size;
  }
  return total;
}

async function oneSize(server: BenchServer, tables: number, rowsEach: number, layout: Layout): Promise<SizeFigures> {
  const bench = await createBenchDatabase(server.url, `bench_tables_${randomBytes(3).toString('hex')}`);
  try {
    const dataDir = process.env.BENCH_MYSQL_URL ? null : path.join(REPO_ROOT, '.data', 'bench', 'mysql', bench.name);
    const rssBefore = server.pid ? (readMemory(server.pid)?.rss ?? 0) : 0;
    const diskBefore = dataDir ? dirBytes(dataDir) : 0;
    const refs: MessageRef[] = Array.from({ length: tables }, (_, i) => ({ kind: 'campaign', id: `small-${i}` }));
    // names[i]: where refs[i]'s rows are.
    const names = new Array<string>(tables);
    const createStarted = performance.now();
    let made = 0;
    await forEachLimited(
      refs.map((ref, i) => ({ ref, i })),
      CONCURRENCY,
      async ({ ref, i }) => {
        const t = await ensureHotTable(bench.db, ref, layout === 'own' ? { ownFromRows: 0 } : {});
        names[i] = t.name;
        await bench.db(t.name).insert(
          Array.from({ length: rowsEach }, (_, r) => ({
            event_id: `${ref.id}-${r}`,
            message_kind: ref.kind,
            message_id: ref.id,
            user_id: `user-${r}`,
            event_type: 'opened',
            channel: 'email',
            occurred_at: '2026-01-01 00:00:00.000',
          })),
        );
        made += 1;
        if (made % 10_000 === 0) log(`  ${fmtInt(made)} / ${fmtInt(tables)} messages`);
      },
    );
    const createMs = performance.now() - createStarted;
    await bench.db.raw('FLUSH TABLES');
    const diskAfter = dataDir ? dirBytes(dataDir) : 0;
    const rssAfter = server.pid ? (readMemory(server.pid)?.rss ?? 0) : 0;
    const physical = [...new Set(names)];
    for (const n of layout === 'segments' ? physical : []) await bench.db.raw('ANALYZE TABLE ??', [n]);
    const [schemaRows] = (await bench.db.raw(
      `SELECT SUM(DATA_LENGTH + INDEX_LENGTH + DATA_FREE) AS b FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'interactions\\_%'`,
    )) as [{ b: string | number | null }[]];

    // The same rows in one plain table: what the data alone takes.
    let sharedBytes: number | null = null;
    if (layout === 'own') {
      await bench.db.raw('CREATE TABLE bench_shared LIKE ??', [HOT_TABLE_TEMPLATE]);
      for (let i = 0; i < names.length; i += 500) {
        await bench.db.raw(
          `INSERT INTO bench_shared (event_id, message_kind, message_id, user_id, event_type, channel, occurred_at) ${names
            .slice(i, i + 500)
            .map((n) => `SELECT event_id, message_kind, message_id, user_id, event_type, channel, occurred_at FROM \`${n}\``)
            .join(' UNION ALL ')}`,
        );
      }
      await bench.db.raw('ANALYZE TABLE bench_shared');
      const [sharedRows] = (await bench.db.raw(
        `SELECT DATA_LENGTH + INDEX_LENGTH AS b FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'bench_shared'`,
      )) as [{ b: string | number }[]];
      sharedBytes = Number(sharedRows[0].b);
    }

    // A schema change as a migration runs it: the template, then one ALTER per table in order, with its
    // progress recorded after each (an added nullable column is instant in both MariaDB and MySQL 8).
    const alterStarted = performance.now();
    const altered = await changeEveryHotTable(bench.db, addHotColumn(`bench-extra-${tables}`, 'bench_extra', 'VARCHAR(8) NULL'));
    // Own tables: one per message. Segments: the two shared tables, whether or not both hold rows.
    const expected = layout === 'own' ? tables : (await sharedHotTables(bench.db)).length;
    if (altered.changed !== expected) throw new Error(`the schema change altered ${altered.changed} of ${expected} tables`);
    const alterMs = performance.now() - alterStarted;

    // What the archive does once a message's rows are in chunks.
    const dropStarted = performance.now();
    await forEachLimited(
      refs.map((ref, i) => ({ ref, i })),
      CONCURRENCY,
      async ({ ref, i }) => {
        if (layout === 'own') await bench.db.raw(`DROP TABLE \`${names[i]}\``);
        else await bench.db.raw('DELETE FROM ?? WHERE message_kind = ? AND message_id = ?', [names[i], ref.kind, ref.id]);
      },
    );
    const dropMs = performance.now() - dropStarted;

    const figures: SizeFigures = {
      layout,
      tables,
      rowsEach,
      diskBytesPerTable: dataDir ? (diskAfter - diskBefore) / tables : NaN,
      schemaBytesPerTable: Number(schemaRows[0].b ?? 0) / tables,
      serverRssBytesPerTable: server.pid ? (rssAfter - rssBefore) / tables : null,
      createMsPerTable: createMs / tables,
      alterMsPerTable: alterMs / tables,
      dropMsPerTable: dropMs / tables,
      sharedBytesPerMessage: sharedBytes === null ? null : sharedBytes / tables,
      tablesAltered: altered.changed,
    };
    log(
      `${fmtInt(tables)} messages, ${layout}: ${fmtInt(figures.diskBytesPerTable)} B disk, ${fmtInt(figures.serverRssBytesPerTable ?? 0)} B server memory, ` +
        `make ${figures.createMsPerTable.toFixed(2)} ms, alter ${figures.alterMsPerTable.toFixed(3)} ms (${altered.changed} tables), ` +
        `archive's end ${figures.dropMsPerTable.toFixed(2)} ms per message` +
        (sharedBytes === null ? '' : `; plain table ${fmtInt(sharedBytes / tables)} B per message`),
    );
    return figures;
  } finally {
    if (!process.env.BENCH_KEEP) await bench.drop();
  }
}

export async function hotTablesBench(server: BenchServer): Promise<{ sizes: SizeFigures[]; markdown: string }> {
  const counts = envIntList('BENCH_TABLE_COUNTS', [1000, 10_000, 100_000]);
  const rowsEach = Number(process.env.BENCH_TABLE_ROWS || 3);
  const layouts = (process.env.BENCH_TABLE_LAYOUTS || 'own,segments').split(',').map((s) => s.trim()) as Layout[];
  const sizes: SizeFigures[] = [];
  for (const n of counts) for (const layout of layouts) sizes.push(await oneSize(server, n, rowsEach, layout));
  const markdown = [
    `Server: ${server.description}. Messages of ${rowsEach} rows, each given its place by ensureHotTable: a table of its own, or a segment of a shared table. Figures per message.`,
    '',
    table(
      [
        'messages',
        'layout',
        'disk',
        'server memory',
        'make + write (ms)',
        'schema change (ms)',
        "archive's DROP / DELETE (ms)",
        'same rows, one plain table',
      ],
      sizes.map((s) => [
        fmtInt(s.tables),
        s.layout === 'own' ? 'own tables' : `segments (${s.tablesAltered} tables)`,
        fmtKB(s.diskBytesPerTable),
        s.serverRssBytesPerTable === null ? '?' : fmtKB(s.serverRssBytesPerTable),
        s.createMsPerTable.toFixed(2),
        s.alterMsPerTable.toFixed(3),
        s.dropMsPerTable.toFixed(2),
        s.sharedBytesPerMessage === null ? '' : `${fmtInt(s.sharedBytesPerMessage)} B`,
      ]),
    ),
  ].join('\n');
  log(`results: ${saveResults('hot-tables', { server: server.description, sizes, markdown })}`);
  return { sizes, markdown };
}

if (require.main === module) exitWhenSettled(runOnBenchServer(hotTablesBench), 'bench:hot-tables');
